//! The dead-letter topic: where records go that cannot be handled, with the reason.

mod dead_letter;
mod headers;

pub use dead_letter::DeadLetter;
pub use headers::*;
