#[erp_events::erp_event(topic = "erp.Inventory.movements", key = id)]
struct Moved { id: String }
fn main() {}
