#[erp_events::erp_type]
enum MovementAction { Received, Shipped, Transferred }

#[erp_events::erp_event(topic = "erp.inventory.movements", key = product_id, event_type = action)]
struct InventoryMovement {
    product_id: String,
    warehouse: String,
    #[serde(rename = "warehouse")]
    store: String,
    action: MovementAction,
    quantity: i64,
    to_warehouse: Option<String>,
}
fn main() {}
