#[erp_events::erp_type]
enum MovementAction { Received, Shipped, Transferred }

#[erp_events::erp_event(topic = "erp.inventory.movements", key = quantity, event_type = action)]
struct InventoryMovement {
    product_id: String,
    warehouse: String,
    action: MovementAction,
    quantity: Vec<u8>,
    to_warehouse: Option<String>,
}
fn main() {}
