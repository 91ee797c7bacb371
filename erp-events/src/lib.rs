//! # erp-events
//!
//! Typed Kafka event pipelines for ERP modules. A struct marked `#[erp_event]` is an event (its
//! topic, type, version and key checked against `schemas/` at compile time); a function marked
//! `#[erp_listener]` is a consumer with ordered at-least-once delivery, retries, a dead-letter
//! topic and idempotent dispatch.
//!
//! ```no_run
//! use erp_events::{Config, Kafka, erp_event, erp_type};
//!
//! #[erp_type]
//! #[derive(Debug, Clone, Copy)]
//! pub enum MovementAction { Received, Shipped, Transferred }
//!
//! /// A stock movement (its schema: `schemas/erp.inventory.movements/INVENTORY_MOVEMENT.v1.json`).
//! #[erp_event(topic = "erp.inventory.movements", key = product_id, event_type = action)]
//! #[derive(Debug, Clone)]
//! pub struct InventoryMovement {
//!     product_id: String,
//!     warehouse: String,
//!     action: MovementAction,
//!     quantity: i64,
//!     to_warehouse: Option<String>,
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let kafka = Kafka::connect(&Config::from_env().brokers, erp_events::catalog!())?;
//! let publisher = kafka.publisher("inventory-service")?;
//! let movement = InventoryMovement {
//!     product_id: "SKU-1".into(),
//!     warehouse: "WH-1".into(),
//!     action: MovementAction::Received,
//!     quantity: 5,
//!     to_warehouse: None,
//! };
//! let delivery = publisher.publish(&movement).await?;
//! println!("stored at partition {} offset {}", delivery.partition, delivery.offset);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

// The macros name `::erp_events::...`: this lets the crate's own tests use them too.
extern crate self as erp_events;

mod app;
pub mod catalog;
mod config;
mod consumer;
mod context;
pub mod dlt;
mod embedded;
mod envelope;
mod event;
pub mod idempotency;
mod ids;
mod in_process;
mod kafka;
mod listener;
mod provision;
mod publisher;
mod record;
mod retry;
pub mod schema;
mod sinks;
mod stats;
mod trace;
mod transport;
mod worker;

#[doc(hidden)]
pub mod __private;

pub use app::{App, AppError, ListenerReport, Running};
pub use catalog::{Catalog, DEFAULT_DEAD_LETTER_SUFFIX, Topic};
pub use config::{
    Brokers, Config, IN_PROCESS_TOPICS_VAR, InProcessTopics, KAFKA_BROKERS_VAR, REDIS_URL_VAR,
};
pub use context::EventContext;
pub use embedded::{EmbeddedBroker, EmbeddedError};
pub use envelope::{DecodeError, Envelope};
pub use erp_events_macros::{catalog, erp_event, erp_listener, erp_type};
pub use event::{Event, EventKey, EventTypeName};
pub use idempotency::{IdempotencySettings, IdempotencyStore, MemoryStore, RedisStore};
pub use in_process::InProcessBus;
pub use kafka::Kafka;
pub use listener::{
    HandlerError, IntoListener, Listener, ListenerExt, ListenerOptions, State, WithState,
};
pub use provision::{ProvisionError, Provisioned};
pub use publisher::{Delivery, PendingDelivery, PublishError, Publisher};
pub use record::{Record, Timestamp};
pub use retry::Backoff;
pub use stats::ListenerCounts;
pub use trace::{TRACEPARENT, TraceContext};
