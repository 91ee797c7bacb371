//! What generated code needs, under one hidden path (`::erp_events::__private`), so user crates
//! depend on `erp-events` alone. Not a public API.

pub use crate::event::{EventKey, EventTypeName};
pub use serde;

use crate::catalog::Catalog;

/// The catalog embedded by `catalog!()`; it was validated when the macro read it.
pub fn embedded_catalog(dir: &str, text: &str) -> Catalog {
    Catalog::parse(std::path::Path::new(dir), text)
        .expect("the catalog was validated at compile time")
}
