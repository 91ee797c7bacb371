//! The erp-events catalog: the topic table and the event schemas kept in `schemas/`.
//!
//! One reader serves both the attribute macros (compile-time checks) and the runtime (topic
//! creation and provisioning), so the two can never disagree about what `schemas/` says.
//!
//! Layout of a catalog directory:
//! - `catalog.toml`: one `[[topic]]` table per topic (name, producer, consumers, partitions,
//!   purpose, append_only);
//! - `<topic>/<SCHEMA_NAME>.v<N>.json`: the JSON Schema (draft 2020-12) of version `N` of an event
//!   payload published on `<topic>`.
#![deny(missing_docs)]

mod compat;
mod locate;
mod naming;
mod schema;
mod topics;

pub use compat::{Break, Compatibility, Incompatibility, check_evolution, read_problems};
pub use locate::{LocateError, OVERRIDE_VAR, WRITE_SCHEMAS_VAR, locate_schemas_dir};
pub use naming::{camel_case, nearest, screaming_snake_case, topic_shape_error};
pub use schema::{EventSchema, JsonType, Property, SchemaError, schema_file_name};
pub use topics::{Catalog, CatalogError, DEFAULT_DEAD_LETTER_SUFFIX, Topic};
