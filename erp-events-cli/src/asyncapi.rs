//! `asyncapi`: an AsyncAPI 3.0 document of the catalog. A channel per topic and per dead-letter
//! topic; a message per event schema version (the standard envelope around that version's
//! payload); a `send` operation for the producer, and for each consumer group a `receive` on the
//! topic and a `send` of its dead letters.

use erp_events::{Catalog, Topic};
use serde_json::{Map, Value, json};

use crate::failure::{Failure, Verdict};
use crate::output::emit;

/// The document for `catalog`.
pub fn document(catalog: &Catalog) -> Result<Value, Failure> {
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    let mut files = catalog.schema_files().map_err(Failure::usage)?;
    files.sort();
    for topic in catalog.topics() {
        let id = identifier(&topic.name);
        let dead_letter_id = format!("{id}-dead-letters");
        let mut channel_messages = Map::new();
        for (_, name, version, path) in files.iter().filter(|file| file.0 == topic.name) {
            let key = format!("{name}_v{version}");
            let text = std::fs::read_to_string(path)
                .map_err(|error| Failure::usage(format!("{}: {error}", path.display())))?;
            let mut payload: Value = serde_json::from_str(&text)
                .map_err(|error| Failure::usage(format!("{}: {error}", path.display())))?;
            if let Value::Object(schema) = &mut payload {
                schema.remove("$schema");
                schema.remove("$id");
            }
            let component = format!("{id}_{key}");
            messages.insert(component.clone(), message(topic, name, *version, payload));
            channel_messages.insert(
                key,
                json!({"$ref": format!("#/components/messages/{component}")}),
            );
        }
        let refs = |channel: &str| -> Vec<Value> {
            channel_messages
                .keys()
                .map(|key| json!({"$ref": format!("#/channels/{channel}/messages/{key}")}))
                .collect()
        };
        let kafka_channel = |address: &str| json!({"kafka": {"topic": address, "partitions": topic.partitions, "bindingVersion": "0.5.0"}});
        channels.insert(
            id.clone(),
            json!({
                "address": topic.name,
                "title": topic.name,
                "description": topic.purpose,
                "messages": channel_messages,
                "bindings": kafka_channel(&topic.name),
            }),
        );
        let dead_letter_topic = topic.dead_letter_topic();
        channels.insert(
            dead_letter_id.clone(),
            json!({
                "address": dead_letter_topic,
                "title": dead_letter_topic,
                "description": format!(
                    "Dead letters of {}: each record as it was, with Spring's kafka_dlt-* headers saying why (erp-events dlt list)",
                    topic.name
                ),
                "messages": channel_messages,
                "bindings": kafka_channel(&dead_letter_topic),
            }),
        );
        let producer = if topic.producer == "*" {
            "every module"
        } else {
            topic.producer.as_str()
        };
        operations.insert(
            format!("{id}_publish"),
            json!({
                "action": "send",
                "channel": {"$ref": format!("#/channels/{id}")},
                "title": format!("{producer} publishes"),
                "messages": refs(&id),
            }),
        );
        for group in &topic.consumers {
            let group_id = json!({"kafka": {
                "groupId": {"type": "string", "enum": [group]},
                "bindingVersion": "0.5.0",
            }});
            operations.insert(
                format!("{id}_{}_receive", identifier(group)),
                json!({
                    "action": "receive",
                    "channel": {"$ref": format!("#/channels/{id}")},
                    "title": format!("{group} listens"),
                    "messages": refs(&id),
                    "bindings": group_id,
                }),
            );
            operations.insert(
                format!("{id}_{}_dead-letter", identifier(group)),
                json!({
                    "action": "send",
                    "channel": {"$ref": format!("#/channels/{dead_letter_id}")},
                    "title": format!("{group} dead-letters what it cannot handle"),
                    "messages": refs(&dead_letter_id),
                }),
            );
        }
    }
    Ok(json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "erp-events catalog",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("The topics of {} (catalog.toml), their event schemas in the erp-events envelope, producers and consumer groups.", catalog.dir().display()),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }))
}

/// Prints the document.
pub fn print(catalog: &Catalog) -> Result<Verdict, Failure> {
    let document = document(catalog)?;
    emit(&serde_json::to_string_pretty(&document).expect("JSON values print"));
    Ok(Verdict::Clean)
}

/// A name as an AsyncAPI key (letters, digits, `_` and `-`).
fn identifier(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The envelope around version `version` of event `name`'s payload.
fn message(topic: &Topic, name: &str, version: u32, payload: Value) -> Value {
    json!({
        "name": name,
        "title": format!("{name} v{version}"),
        "summary": format!("{name}, schema version {version}, in the erp-events envelope"),
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": {
                "traceparent": {"type": "string", "description": "W3C trace context of the publish"}
            }
        },
        "payload": {
            "type": "object",
            "required": ["eventId", "eventType", "source", "timestamp", "version", "payload"],
            "properties": {
                "eventId": {"type": "string", "format": "uuid", "description": "Unique id of the event; listeners deduplicate on it"},
                "eventType": {"type": "string", "description": "What happened"},
                "source": {"type": "string", "description": format!("The publishing service ({})", topic.producer)},
                "timestamp": {"type": "string", "format": "date-time"},
                "traceId": {"type": ["string", "null"], "description": "W3C trace id (32 hex digits)"},
                "userId": {"type": ["string", "null"]},
                "version": {"type": "integer", "const": version},
                "payload": payload,
            }
        },
        "bindings": {"kafka": {"key": {"type": "string"}, "bindingVersion": "0.5.0"}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_keys_asyncapi_accepts() {
        assert_eq!(
            identifier("erp.inventory.movements"),
            "erp-inventory-movements"
        );
        assert_eq!(identifier("search_sync-2"), "search_sync-2");
    }
}
