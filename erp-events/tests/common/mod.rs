//! What the runtime's own tests share: two events of the workspace catalog (no demo module), a
//! recorder of what handlers saw, and a bounded wait.
#![allow(dead_code)] // each test file uses its part

use std::sync::{Arc, Mutex};
use std::time::Duration;

use erp_events::{erp_event, erp_type};

/// How long a test waits for what must happen; a deadlock fails it here instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// What happened to the stock (the workspace catalog's `INVENTORY_MOVEMENT` schema).
#[erp_type]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovementAction {
    /// Goods arrived in a warehouse.
    Received,
    /// Goods left a warehouse for a customer.
    Shipped,
    /// Goods moved from one warehouse to another.
    Transferred,
}

/// A stock movement of one product, keyed by product so each product's movements stay ordered.
#[erp_event(topic = "erp.inventory.movements", key = product_id, event_type = action)]
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryMovement {
    /// The product (SKU).
    pub product_id: String,
    /// The warehouse the stock is counted in.
    pub warehouse: String,
    /// What happened.
    pub action: MovementAction,
    /// Units moved; always positive, the action gives the direction.
    pub quantity: i64,
    /// The receiving warehouse of a transfer.
    pub to_warehouse: Option<String>,
}

/// Something a user did to an entity (the workspace catalog's `AUDIT_RECORD` schema).
#[erp_event(topic = "erp.audit.events", key = entity_id)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The module the action happened in.
    pub module: String,
    /// The entity acted on.
    pub entity_id: String,
    /// What was done.
    pub action: String,
    /// Who did it.
    pub actor: String,
    /// Free text.
    pub detail: Option<String>,
}

pub fn movement(quantity: i64) -> InventoryMovement {
    InventoryMovement {
        product_id: "SKU-1".into(),
        warehouse: "WH-1".into(),
        action: MovementAction::Received,
        quantity,
        to_warehouse: None,
    }
}

pub fn audit(sequence: i64, forwarded: bool) -> AuditRecord {
    AuditRecord {
        module: "inventory".into(),
        entity_id: "E-1".into(),
        action: sequence.to_string(),
        actor: "clerk-17".into(),
        detail: forwarded.then(|| "forwarded".into()),
    }
}

/// The quantities a handler saw, in order.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<i64>>>);

impl Seen {
    pub fn push(&self, quantity: i64) {
        self.0.lock().unwrap().push(quantity);
    }

    pub fn all(&self) -> Vec<i64> {
        self.0.lock().unwrap().clone()
    }
}

pub async fn within_patience<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {PATIENCE:?} (a deadlock?)"))
}

/// A listener that does nothing.
#[erp_events::erp_listener(group = "analytics")]
pub async fn count(
    _event: erp_events::Envelope<InventoryMovement>,
) -> Result<(), erp_events::HandlerError> {
    Ok(())
}
