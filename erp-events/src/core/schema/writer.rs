//! The schema writer: writes each event's schema file from its Rust type, and says what changed.
//!
//! A crate that defines events gives the writer a tiny binary listing them:
//!
//! ```no_run
//! # use erp_events::schema::SchemaWriter;
//! # #[erp_events::erp_type] enum MovementAction { Received, Shipped, Transferred }
//! # #[erp_events::erp_event(topic = "erp.inventory.movements", key = product_id)]
//! # struct InventoryMovement { product_id: String, warehouse: String, action: MovementAction,
//! #                            quantity: i64, to_warehouse: Option<String> }
//! fn main() -> std::process::ExitCode {
//!     SchemaWriter::new(erp_events::catalog!())
//!         .event::<InventoryMovement>()
//!         .run(std::env::args().skip(1))
//! }
//! ```
//!
//! `write` writes the files; `check` only reports differences (and fails if there are any).
//! Build it with `ERP_EVENTS_WRITE_SCHEMAS=1` so that the crate compiles while its schemas are
//! missing or stale (the variable turns the compile-time schema checks off).

use std::path::PathBuf;
use std::process::ExitCode;

pub use erp_events_catalog::WRITE_SCHEMAS_VAR;
use erp_events_catalog::{Catalog, Compatibility, EventSchema, check_evolution, read_problems};

use crate::core::event::Event;

/// Writes and checks the schema files of a set of events.
pub struct SchemaWriter<'c> {
    catalog: &'c Catalog,
    events: Vec<(&'static str, u32, EventSchema)>,
}

/// How a schema file differs from what the Rust type implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaChange {
    /// The file says exactly what the type implies.
    Unchanged,
    /// There is no file yet.
    Missing,
    /// The file differs; each line says how.
    Changed(Vec<String>),
    /// The file differs in a way its readers cannot take (a published version is never changed
    /// so): [`SchemaWriter::write`] leaves it alone; bump the event's `version` instead. Each
    /// line says what breaks.
    Incompatible(Vec<String>),
    /// The topic already carries other events (named): a topic carries one event struct, so
    /// [`SchemaWriter::write`] leaves it alone; give this event a topic of its own.
    TopicTaken(Vec<String>),
}

impl<'c> SchemaWriter<'c> {
    /// A writer for schemas in `catalog`'s directory.
    pub fn new(catalog: &'c Catalog) -> Self {
        SchemaWriter {
            catalog,
            events: Vec::new(),
        }
    }

    /// Adds an event type.
    pub fn event<E: Event>(mut self) -> Self {
        self.events.push((E::TOPIC, E::VERSION, E::schema()));
        self
    }

    /// Each event's schema file and how it differs from the type.
    pub fn changes(&self) -> Vec<(PathBuf, SchemaChange)> {
        self.events
            .iter()
            .map(|(topic, version, schema)| {
                let path = self.catalog.schema_path(topic, &schema.name, *version);
                let others: Vec<String> = (self.catalog.event_names(topic))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|other| *other != schema.name)
                    .collect();
                if !others.is_empty() {
                    return (path, SchemaChange::TopicTaken(others));
                }
                let change = match std::fs::read_to_string(&path) {
                    Err(_) => SchemaChange::Missing,
                    Ok(text) => match EventSchema::parse(&text) {
                        Err(error) => SchemaChange::Changed(vec![format!("unreadable: {error}")]),
                        Ok(committed) => {
                            let lines = differences(&committed, schema);
                            // A published version is read by consumers built for it and
                            // written by producers built for it: a change in place must suit both.
                            let mut breaks = read_problems(&committed, schema);
                            breaks.extend(read_problems(schema, &committed));
                            if !breaks.is_empty() {
                                SchemaChange::Incompatible(
                                    breaks.iter().map(ToString::to_string).collect(),
                                )
                            } else if lines.is_empty()
                                && text == schema.to_file_text(topic, *version)
                            {
                                SchemaChange::Unchanged
                            } else if lines.is_empty() {
                                SchemaChange::Changed(vec!["layout only".to_owned()])
                            } else {
                                SchemaChange::Changed(lines)
                            }
                        }
                    },
                };
                (path, change)
            })
            .collect()
    }

    /// Writes every schema that is missing or changed compatibly (never an
    /// [`SchemaChange::Incompatible`] one).
    pub fn write(&self) -> std::io::Result<Vec<(PathBuf, SchemaChange)>> {
        let changes = self.changes();
        for ((topic, version, schema), (path, change)) in self.events.iter().zip(&changes) {
            if matches!(change, SchemaChange::Missing | SchemaChange::Changed(_)) {
                std::fs::create_dir_all(path.parent().expect("a schema file is in a folder"))?;
                std::fs::write(path, schema.to_file_text(topic, *version))?;
            }
        }
        Ok(changes)
    }

    /// Problems with versions: a schema that breaks its topic's compatibility mode with the
    /// versions before it (those whose files exist).
    pub fn incompatibilities(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|(_, version, _)| *version > 1)
            .filter_map(|(topic, version, schema)| {
                let mode = self
                    .catalog
                    .topic(topic)
                    .map_or(Compatibility::default(), |row| row.compatibility());
                let mut versions: Vec<(u32, EventSchema)> = (1..*version)
                    .filter_map(|earlier| {
                        let file = self.catalog.load_schema(topic, &schema.name, earlier);
                        Some((earlier, file.ok()??))
                    })
                    .collect();
                versions.push((*version, schema.clone()));
                let breaks = check_evolution(mode, &versions);
                (!breaks.is_empty()).then(|| {
                    let list: Vec<String> = breaks.iter().map(ToString::to_string).collect();
                    format!("{}.v{version} ({mode}): {}", schema.name, list.join("; "))
                })
            })
            .collect()
    }

    /// Runs as a command: `write` (the default) or `check`; prints what changed.
    pub fn run(self, mut args: impl Iterator<Item = String>) -> ExitCode {
        let mode = args.next().unwrap_or_else(|| "write".to_owned());
        let changes = match mode.as_str() {
            "write" => match self.write() {
                Ok(changes) => changes,
                Err(error) => {
                    eprintln!("cannot write schemas: {error}");
                    return ExitCode::FAILURE;
                }
            },
            "check" => self.changes(),
            other => {
                eprintln!("unknown mode `{other}`; use `write` or `check`");
                return ExitCode::FAILURE;
            }
        };
        let (mut differ, mut refused) = (false, false);
        let here = std::env::current_dir().unwrap_or_default();
        for (path, change) in &changes {
            let path = path.strip_prefix(&here).unwrap_or(path);
            let verb = if mode == "write" { "wrote" } else { "differs" };
            match change {
                SchemaChange::Unchanged => println!("unchanged  {}", path.display()),
                SchemaChange::Missing => {
                    differ = true;
                    let verb = if mode == "write" {
                        "created"
                    } else {
                        "missing"
                    };
                    println!("{verb:<10} {}", path.display());
                }
                SchemaChange::Changed(lines) => {
                    differ = true;
                    println!("{verb:<10} {}", path.display());
                    lines
                        .iter()
                        .for_each(|line| println!("             {line}"));
                }
                SchemaChange::TopicTaken(others) => {
                    refused = true;
                    println!(
                        "refused    {}: its topic carries {} already; a topic carries one event struct: declare a topic of its own for it in catalog.toml",
                        path.display(),
                        others.join(", ")
                    );
                }
                SchemaChange::Incompatible(lines) => {
                    refused = true;
                    println!(
                        "refused    {}: its readers cannot take this change; bump the event's `version` and write the new version's file",
                        path.display()
                    );
                    lines
                        .iter()
                        .for_each(|line| println!("             {line}"));
                }
            }
        }
        let incompatible = self.incompatibilities();
        for problem in &incompatible {
            println!("incompatible {problem}");
        }
        if (mode == "check" && differ) || refused || !incompatible.is_empty() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// What differs between the committed schema and the one the type implies, property by property.
fn differences(committed: &EventSchema, implied: &EventSchema) -> Vec<String> {
    let mut lines = Vec::new();
    if committed.description != implied.description {
        lines.push("description changed".to_owned());
    }
    for property in &implied.properties {
        match committed.property(&property.name) {
            None => lines.push(format!("+ `{}`: {}", property.name, label(property))),
            Some(old) if old == property => {}
            Some(old) if label(old) != label(property) => lines.push(format!(
                "~ `{}`: {} -> {}",
                property.name,
                label(old),
                label(property)
            )),
            Some(_) => lines.push(format!("~ `{}`: details changed", property.name)),
        }
    }
    for property in &committed.properties {
        if implied.property(&property.name).is_none() {
            lines.push(format!("- `{}`: {}", property.name, label(property)));
        }
    }
    lines
}

fn label(property: &erp_events_catalog::Property) -> String {
    format!(
        "{}{}, {}",
        property.json_type.as_str(),
        if property.nullable { " or null" } else { "" },
        if property.required {
            "required"
        } else {
            "optional"
        }
    )
}
