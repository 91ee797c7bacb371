#[erp_events::erp_type]
enum MovementAction { Received, Shipped, Transferred }

#[erp_events::erp_event(topic = "erp.inventory.movements", key = product_id, key = product_id, partitions = 3, topik = "x")]
struct InventoryMovement {
    product_id: String,
    warehouse: String,
    action: MovementAction,
    quantity: i64,
    to_warehouse: Option<String>,
}
fn main() {}
