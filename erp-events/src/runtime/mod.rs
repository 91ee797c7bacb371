//! Driving one partition of one listener, whatever the transport: records in order, claimed,
//! handled with retries or dead-lettered, reported back through sinks. Knows no Kafka type.

pub(crate) mod claims;
pub mod dlt;
pub(crate) mod durations;
#[cfg(feature = "test-util")]
pub(crate) mod fault;
pub(crate) mod metrics;
pub(crate) mod queue;
pub mod record;
pub(crate) mod route;
pub(crate) mod sinks;
pub(crate) mod stats;
pub(crate) mod stop;
pub(crate) mod worker;
