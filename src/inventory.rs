//! Inventory: stock received, shipped and transferred (`erp.inventory.movements`).

use erp_events::{erp_event, erp_type};

/// What happened to the stock; its name is the envelope's `eventType`.
#[erp_type]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
}
