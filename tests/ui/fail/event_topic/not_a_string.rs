#[erp_events::erp_event(topic = erp_inventory_movements, key = id)]
struct Moved { id: String }
fn main() {}
