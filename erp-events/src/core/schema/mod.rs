//! Event payload schemas from Rust types: what the schema writer writes and the compile-time
//! checks compare against.

mod types;
mod writer;

pub use erp_events_catalog::OVERRIDE_VAR as SCHEMAS_DIR_VAR;
pub use erp_events_catalog::{EventSchema, JsonType, Property};
pub use types::{
    JsonArray, JsonBoolean, JsonInteger, JsonNumber, JsonObject, JsonString, PayloadType,
    TypeSchema,
};
pub use writer::{SchemaChange, SchemaWriter, WRITE_SCHEMAS_VAR};
