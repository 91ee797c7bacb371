//! The transport-independent core: what an event, its envelope and a listener are, the
//! catalog and the schemas, retry timing, and the task-scoped context and trace. Depends on
//! nothing else in the crate.

pub mod catalog;
pub mod config;
pub mod context;
pub mod envelope;
pub mod event;
pub(crate) mod ids;
pub mod listener;
pub mod properties;
pub mod retry;
pub mod schema;
pub(crate) mod spans;
pub mod trace;
