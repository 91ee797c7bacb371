//! How records travel: the in-process bus, and Kafka (its consumer, producers, dead letters,
//! the embedded broker and provisioning). Each transport feeds the runtime's workers.

pub mod in_process;
pub mod kafka;
