#[erp_events::erp_type]
enum MovementAction { Received, Shipped, Transferred }

#[erp_events::erp_event(topic = "erp.inventory.movements", key = product_id)]
struct InventoryMovement<W> {
    product_id: String,
    warehouse: W,
    action: MovementAction,
    quantity: i64,
    to_warehouse: Option<String>,
}
fn main() {}
