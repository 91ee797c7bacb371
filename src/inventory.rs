//! Inventory: stock received, shipped and transferred (`erp.inventory.movements`).
//!
//! Listeners: **search-sync** keeps a stock index per product and warehouse (standing in for
//! OpenSearch); **analytics** counts movements and units per action.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use erp_events::{Envelope, HandlerError, State, erp_event, erp_listener, erp_type};

use crate::progress::Progress;

/// What happened to the stock; its name is the envelope's `eventType`.
#[erp_type]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

impl InventoryMovement {
    /// A movement of `quantity` units of `product_id` in `warehouse`.
    pub fn new(product_id: &str, warehouse: &str, action: MovementAction, quantity: i64) -> Self {
        InventoryMovement {
            product_id: product_id.to_owned(),
            warehouse: warehouse.to_owned(),
            action,
            quantity,
            to_warehouse: None,
        }
    }

    /// A transfer of `quantity` units from `from` to `to`.
    pub fn transfer(product_id: &str, from: &str, to: &str, quantity: i64) -> Self {
        InventoryMovement {
            to_warehouse: Some(to.to_owned()),
            ..Self::new(product_id, from, MovementAction::Transferred, quantity)
        }
    }
}

/// Stock per product and warehouse, and the envelopes indexed: the search index's documents.
#[derive(Debug, Clone, Default)]
pub struct StockIndex {
    stock: Arc<Mutex<BTreeMap<String, BTreeMap<String, i64>>>>,
    documents: Arc<Mutex<Vec<String>>>,
    /// Ticks once per indexed movement.
    pub progress: Progress,
}

impl StockIndex {
    fn apply(&self, envelope: &Envelope<InventoryMovement>) {
        let movement = &envelope.payload;
        let mut stock = self.stock.lock().expect("not poisoned");
        let product = stock.entry(movement.product_id.clone()).or_default();
        let mut add = |warehouse: &str, delta: i64| {
            *product.entry(warehouse.to_owned()).or_default() += delta;
        };
        match movement.action {
            MovementAction::Received => add(&movement.warehouse, movement.quantity),
            MovementAction::Shipped => add(&movement.warehouse, -movement.quantity),
            MovementAction::Transferred => {
                add(&movement.warehouse, -movement.quantity);
                if let Some(to) = &movement.to_warehouse {
                    add(to, movement.quantity);
                }
            }
        }
        let document = String::from_utf8(envelope.to_json().expect("an envelope serializes"))
            .expect("JSON is UTF-8");
        self.documents.lock().expect("not poisoned").push(document);
    }

    /// Units of `product_id` per warehouse.
    pub fn stock(&self, product_id: &str) -> BTreeMap<String, i64> {
        let stock = self.stock.lock().expect("not poisoned");
        stock.get(product_id).cloned().unwrap_or_default()
    }

    /// Every indexed envelope, as JSON, in the order indexed.
    pub fn documents(&self) -> Vec<String> {
        self.documents.lock().expect("not poisoned").clone()
    }
}

/// Keeps the stock index in step with the movements.
#[erp_listener(group = "search-sync", retries = 3)]
pub async fn sync_stock_index(
    event: Envelope<InventoryMovement>,
    State(index): State<StockIndex>,
) -> Result<(), HandlerError> {
    index.apply(&event);
    index.progress.tick();
    Ok(())
}

/// Movements and units per action.
#[derive(Debug, Clone, Default)]
pub struct MovementStats {
    per_action: Arc<Mutex<BTreeMap<MovementAction, (u64, i64)>>>,
    /// Ticks once per counted movement.
    pub progress: Progress,
}

impl MovementStats {
    /// `(movements, units)` per action.
    pub fn per_action(&self) -> BTreeMap<MovementAction, (u64, i64)> {
        self.per_action.lock().expect("not poisoned").clone()
    }
}

/// Counts movements for the analytics dashboards.
#[erp_listener(group = "analytics")]
pub async fn count_movements(
    event: Envelope<InventoryMovement>,
    State(stats): State<MovementStats>,
) -> Result<(), HandlerError> {
    {
        let mut per_action = stats.per_action.lock().expect("not poisoned");
        let entry = per_action.entry(event.payload.action).or_default();
        entry.0 += 1;
        entry.1 += event.payload.quantity;
    }
    stats.progress.tick();
    Ok(())
}
