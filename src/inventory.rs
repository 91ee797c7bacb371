//! Inventory: stock received, shipped and transferred (`erp.inventory.movements`).
//!
//! Listeners: **search-sync** keeps a stock index per product and warehouse (standing in for
//! OpenSearch); **analytics** counts movements and units per action.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use erp_events::{
    App, Envelope, Event, EventContext, HandlerError, ListenerExt, ListenerReport, Publisher,
    State, erp_event, erp_listener, erp_type,
};

use crate::demo::{DemoError, Module, ReportTable, Shared, reports_of};

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
    stock: Shared<BTreeMap<String, BTreeMap<String, i64>>>,
    documents: Shared<Vec<String>>,
    timeouts_left: Arc<AtomicU32>,
}

/// The search index did not answer in time (simulated); worth retrying.
#[derive(Debug, thiserror::Error)]
#[error("the search index timed out")]
pub struct IndexTimeout;

impl StockIndex {
    /// Makes the next `count` index writes time out, as a search cluster under load does.
    pub fn time_out_next(&self, count: u32) {
        self.timeouts_left.store(count, Ordering::Release);
    }

    fn apply(&self, envelope: &Envelope<InventoryMovement>) -> Result<(), IndexTimeout> {
        let timed_out =
            self.timeouts_left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                    left.checked_sub(1)
                });
        if timed_out.is_ok() {
            return Err(IndexTimeout);
        }
        let movement = &envelope.payload;
        let mut stock = self.stock.lock();
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
        self.documents.lock().push(document);
        Ok(())
    }

    /// Units of each product per warehouse.
    pub fn stock(&self) -> BTreeMap<String, BTreeMap<String, i64>> {
        self.stock.get()
    }

    /// Every indexed envelope, as JSON, in the order indexed.
    pub fn documents(&self) -> Vec<String> {
        self.documents.get()
    }
}

/// Keeps the stock index in step with the movements. A timeout is retried (1 s, then 2 s, 4 s).
#[erp_listener(group = "search-sync", retries = 3)]
pub async fn sync_stock_index(
    event: Envelope<InventoryMovement>,
    State(index): State<StockIndex>,
) -> Result<(), HandlerError> {
    index.apply(&event)?;
    Ok(())
}

/// Movements and units per action.
#[derive(Debug, Clone, Default)]
pub struct MovementStats {
    per_action: Shared<BTreeMap<MovementAction, (u64, i64)>>,
}

impl MovementStats {
    /// `(movements, units)` per action.
    pub fn per_action(&self) -> BTreeMap<MovementAction, (u64, i64)> {
        self.per_action.get()
    }
}

/// Counts movements for the analytics dashboards.
#[erp_listener(group = "analytics")]
pub async fn count_movements(
    event: Envelope<InventoryMovement>,
    State(stats): State<MovementStats>,
) -> Result<(), HandlerError> {
    let mut per_action = stats.per_action.lock();
    let entry = per_action.entry(event.payload.action).or_default();
    entry.0 += 1;
    entry.1 += event.payload.quantity;
    Ok(())
}

/// A morning's movements: two receipts, two shipments and a transfer.
pub fn sample_movements() -> [InventoryMovement; 5] {
    [
        InventoryMovement::new("SKU-100", "WH-EAST", MovementAction::Received, 40),
        InventoryMovement::new("SKU-200", "WH-EAST", MovementAction::Received, 12),
        InventoryMovement::new("SKU-100", "WH-EAST", MovementAction::Shipped, 5),
        InventoryMovement::transfer("SKU-100", "WH-EAST", "WH-WEST", 10),
        InventoryMovement::new("SKU-200", "WH-EAST", MovementAction::Shipped, 2),
    ]
}

/// The inventory module: the stock index and the movement statistics its listeners keep.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// search-sync's index.
    pub index: StockIndex,
    /// analytics' counts.
    pub stats: MovementStats,
}

/// What the inventory listeners did.
#[derive(Debug, Clone, PartialEq)]
pub struct InventorySummary {
    /// Units per product and warehouse, as search-sync indexed them.
    pub stock: BTreeMap<String, BTreeMap<String, i64>>,
    /// `(movements, units)` per action, as analytics counted them.
    pub per_action: BTreeMap<MovementAction, (u64, i64)>,
    /// The listeners' reports.
    pub reports: Vec<ListenerReport>,
}

impl Module for Inventory {
    const TOPIC: &'static str = InventoryMovement::TOPIC;
    const PRODUCER: &'static str = "inventory-service";
    type Summary = InventorySummary;

    fn listen(&self, app: App) -> App {
        app.listener(sync_stock_index.with_state(self.index.clone()))
            .listener(count_movements.with_state(self.stats.clone()))
    }

    async fn publish(&self, publisher: &Publisher) -> Result<u64, DemoError> {
        // The user who acts; every envelope published in this scope names them.
        let deliveries = EventContext::new()
            .with_user("clerk-17")
            .scope(publisher.publish_all(&sample_movements()))
            .await?;
        Ok(deliveries.len() as u64)
    }

    fn summary(&self, reports: &[ListenerReport]) -> InventorySummary {
        InventorySummary {
            stock: self.index.stock(),
            per_action: self.stats.per_action(),
            reports: reports_of(Self::TOPIC, reports),
        }
    }
}

impl fmt::Display for InventorySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "erp.inventory.movements")?;
        for (product, warehouses) in &self.stock {
            writeln!(f, "  search-sync: stock of {product}: {warehouses:?}")?;
        }
        for (action, (movements, units)) in &self.per_action {
            writeln!(
                f,
                "  analytics: {action:?}: {movements} movements, {units} units"
            )?;
        }
        write!(f, "{}", ReportTable(&self.reports))
    }
}
