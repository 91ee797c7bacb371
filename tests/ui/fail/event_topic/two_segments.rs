#[erp_events::erp_event(topic = "inventory.movements", key = id)]
struct Moved { id: String }
fn main() {}
