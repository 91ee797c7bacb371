//! `schemas check`: every schema file parses, and each event's versions evolve as their topic's
//! compatibility mode allows (the check the macros run at build time, on every version).

use std::collections::BTreeMap;

use erp_events::Catalog;
use erp_events_catalog::{EventSchema, check_evolution};
use serde_json::{Value, json};

use crate::failure::{Failure, Verdict};
use crate::output::print;

/// One event of one topic, with its versions, oldest first.
struct Event {
    topic: String,
    name: String,
    versions: Vec<(u32, EventSchema)>,
    problems: Vec<String>,
}

/// Checks every schema of `catalog`; any problem makes exit 1.
pub fn check(catalog: &Catalog, json: bool) -> Result<Verdict, Failure> {
    let files = catalog.schema_files().map_err(Failure::usage)?;
    let mut events: BTreeMap<(String, String), Event> = BTreeMap::new();
    for (topic, name, version, path) in files {
        let event = events
            .entry((topic.clone(), name.clone()))
            .or_insert_with(|| Event {
                topic,
                name,
                versions: Vec::new(),
                problems: Vec::new(),
            });
        let parsed = std::fs::read_to_string(&path)
            .map_err(|error| error.to_string())
            .and_then(|text| EventSchema::parse(&text).map_err(|error| error.to_string()));
        match parsed {
            Ok(schema) => event.versions.push((version, schema)),
            Err(error) => event.problems.push(format!("{}: {error}", path.display())),
        }
    }
    let mut per_topic: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (topic, name) in events.keys() {
        per_topic
            .entry(topic.clone())
            .or_default()
            .push(name.clone());
    }
    for event in events.values_mut() {
        let others: Vec<&String> = per_topic[&event.topic]
            .iter()
            .filter(|other| **other != event.name)
            .collect();
        if !others.is_empty() {
            let others: Vec<&str> = others.iter().map(|other| other.as_str()).collect();
            event.problems.push(format!(
                "its topic also carries {}: a topic carries one event struct (its listeners read every record as that struct); give each its own topic",
                others.join(", ")
            ));
        }
        event.versions.sort_by_key(|(version, _)| *version);
        let mode = catalog
            .topic(&event.topic)
            .map(|topic| topic.compatibility())
            .unwrap_or_default();
        for (index, (version, _)) in event.versions.iter().enumerate() {
            if *version != index as u32 + 1 {
                event.problems.push(format!(
                    "version {} is missing: every earlier version is kept, so that compatibility can be checked",
                    index + 1
                ));
                break;
            }
        }
        for newest in 2..=event.versions.len() {
            let breaks = check_evolution(mode, &event.versions[..newest]);
            if !breaks.is_empty() {
                let list: Vec<String> = breaks.iter().map(ToString::to_string).collect();
                event.problems.push(format!(
                    "version {} breaks the `{mode}` compatibility of the topic: {}; under `{mode}` {}",
                    event.versions[newest - 1].0,
                    list.join("; "),
                    mode.allows()
                ));
            }
        }
    }
    let value = Value::Array(
        events
            .values()
            .map(|event| {
                json!({
                    "topic": event.topic,
                    "event": event.name,
                    "versions": event.versions.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
                    "problems": event.problems,
                })
            })
            .collect(),
    );
    print(json, &value, || {
        let mut lines = Vec::new();
        for event in events.values() {
            let versions: Vec<String> = event
                .versions
                .iter()
                .map(|(v, _)| format!("v{v}"))
                .collect();
            let status = if event.problems.is_empty() {
                "ok"
            } else {
                "BROKEN"
            };
            lines.push(format!(
                "{status:<6}  {} {} ({})",
                event.topic,
                event.name,
                versions.join(", ")
            ));
            lines.extend(
                event
                    .problems
                    .iter()
                    .map(|problem| format!("        {problem}")),
            );
        }
        lines.join("\n")
    });
    Ok(Verdict::problems_if(
        events.values().any(|event| !event.problems.is_empty()),
    ))
}
