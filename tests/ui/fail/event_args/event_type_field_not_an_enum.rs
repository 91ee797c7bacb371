#[erp_events::erp_event(topic = "erp.inventory.movements", key = product_id, event_type = action)]
struct InventoryMovement {
    product_id: String,
    warehouse: String,
    action: String,
    quantity: i64,
    to_warehouse: Option<String>,
}
fn main() {}
