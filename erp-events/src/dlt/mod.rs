//! The dead-letter topic: where records go that cannot be handled, with the reason.

mod headers;
mod publisher;

pub use headers::*;
pub(crate) use publisher::KafkaDeadLetters;
