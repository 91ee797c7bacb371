#[erp_events::erp_event(topic = "erp.inventory.movements", key = product_id)]
enum InventoryMovement { Received, Shipped }
fn main() {}
