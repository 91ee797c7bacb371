// The inventory topic carries `INVENTORY_MOVEMENT`: a second event struct cannot claim it.
#[erp_events::erp_event(topic = "erp.inventory.movements", key = product_id, event_type = "STOCK_COUNTED")]
struct StockCounted { product_id: String, counted: i64 }
fn main() {}
