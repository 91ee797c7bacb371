//! The topic catalog at run time: the same reader the macros use at compile time.

pub use erp_events_catalog::{Catalog, CatalogError, DEFAULT_DEAD_LETTER_SUFFIX, Topic};
