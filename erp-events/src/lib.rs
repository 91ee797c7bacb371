//! # erp-events
//!
//! Typed Kafka event pipelines for ERP modules. A struct marked `#[erp_event]` is an event (its
//! topic, type, version and key checked against `schemas/` at compile time); a function marked
//! `#[erp_listener]` is a consumer with ordered at-least-once delivery, retries, a dead-letter
//! topic and idempotent dispatch.
//!
//! ```no_run
//! use erp_events::{App, Config, erp_event, erp_type};
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
//! let app = App::from_config(&Config::from_env(), erp_events::catalog!())?;
//! let publisher = app.publisher("inventory-service")?;
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
//!
//! ## Layers
//!
//! Dependencies run one way, and the folders show it (`scripts/layers` checks it):
//!
//! - `core`: the transport-independent model: events, envelopes, listeners, retry timing, the
//!   catalog and schemas, the task-scoped context and trace.
//! - `idempotency`: the stores that remember which events a group handled (memory, Redis).
//! - `runtime`: driving one partition of one listener (claims, retries, dead letters, offsets
//!   reported through sinks); it knows no Kafka type.
//! - `transport`: how records travel: the in-process bus, and Kafka (group consumers, the
//!   dead-letter producer, the embedded broker, provisioning).
//! - `app`: the assembly ([`App`]) and the [`Publisher`], which route each topic to its
//!   transport. This facade re-exports what users need.
#![deny(missing_docs)]

// The macros name `::erp_events::...`: this lets the crate's own tests use them too.
extern crate self as erp_events;

mod app;
mod core;
pub mod idempotency;
mod runtime;
mod transport;

#[doc(hidden)]
pub mod __private;
#[cfg(feature = "test-util")]
pub mod test_util;

pub use app::health::HealthError;
#[cfg(feature = "otlp")]
pub use app::otlp;
pub use app::publisher::{Delivery, PendingDelivery, PublishError, Publisher};
pub use app::{App, AppError, ListenerReport, Running};
pub use core::catalog::{self, Catalog, DEFAULT_DEAD_LETTER_SUFFIX, Topic};
pub use core::config::{
    Brokers, Config, HEALTH_ADDR_VAR, IN_PROCESS_TOPICS_VAR, InProcessTopics, KAFKA_BROKERS_VAR,
    REDIS_CA_VAR, REDIS_CLUSTER_NODES_VAR, REDIS_URL_VAR,
};
pub use core::context::EventContext;
pub use core::envelope::{DecodeError, Envelope};
pub use core::event::{Event, EventKey, EventTypeName};
pub use core::listener::{
    HandlerError, IntoListener, Listener, ListenerExt, ListenerOptions, Panicked, State, Stateless,
    TimedOut, WithState,
};
pub use core::properties::{ConflictingProperty, KAFKA_PROPERTY_PREFIX, KafkaProperties};
pub use core::retry::Backoff;
pub use core::schema;
pub use core::trace::{TRACEPARENT, TraceContext};
pub use erp_events_catalog::Compatibility;
pub use erp_events_macros::{catalog, erp_event, erp_listener, erp_type};
pub use idempotency::{
    ConfirmMode, IdempotencySettings, IdempotencyStore, MemoryStore, RedisStore,
};
pub use runtime::dlt;
pub use runtime::record::{Record, Timestamp};
pub use runtime::stats::ListenerCounts;
pub use transport::in_process::{InProcessBus, InProcessError};
pub use transport::kafka::embedded::{EmbeddedBroker, EmbeddedError};
pub use transport::kafka::headers::headers as record_headers;
pub use transport::kafka::provision::{ProvisionError, Provisioned};
pub use transport::kafka::{Kafka, Refusal};
