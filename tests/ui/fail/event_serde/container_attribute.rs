#[erp_events::erp_type]
enum MovementAction { Received, Shipped, Transferred }

#[erp_events::erp_event(topic = "erp.inventory.movements", key = product_id, event_type = action)]
#[serde(rename_all = "snake_case")]
struct InventoryMovement {
    product_id: String,
    warehouse: String,
    action: MovementAction,
    quantity: i64,
    to_warehouse: Option<String>,
}
fn main() {}
