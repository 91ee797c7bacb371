#[erp_events::erp_type]
enum MovementAction { Received, Shipped, Transferred }

#[erp_events::erp_event(topic = "erp.inventory.movements", key = product_id, event_type = action)]
struct InventoryMovement {
    product_id: String,
    warehouse: String,
    action: MovementAction,
    #[serde(default, skip_serializing_if = "is_zero")]
    quantity: i64,
    #[serde(skip)]
    to_warehouse: Option<String>,
}
fn is_zero(value: &i64) -> bool { *value == 0 }
fn main() {}
