//! The catalog's inventory movement, shared by the listener cases.
#![allow(dead_code)]

#[erp_events::erp_type]
pub enum MovementAction { Received, Shipped, Transferred }

#[erp_events::erp_event(topic = "erp.inventory.movements", key = product_id, event_type = action)]
pub struct InventoryMovement {
    pub product_id: String,
    pub warehouse: String,
    pub action: MovementAction,
    pub quantity: i64,
    pub to_warehouse: Option<String>,
}
