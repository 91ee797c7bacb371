//! The topic catalog at run time: the same reader the macros use at compile time.

pub use erp_events_catalog::{Catalog, CatalogError, Topic};

/// Suffix of every dead-letter topic (Spring's `DeadLetterPublishingRecoverer` default).
pub const DEAD_LETTER_SUFFIX: &str = ".DLT";

/// The dead-letter topic of `topic`: `<topic>.DLT`.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}{DEAD_LETTER_SUFFIX}")
}
