#[erp_events::erp_event(topic = "erp.inventory.movements", key = product_id)]
struct InventoryMovement(String, i64);
fn main() {}
