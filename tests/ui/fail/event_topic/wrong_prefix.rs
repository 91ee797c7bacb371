#[erp_events::erp_event(topic = "crm.inventory.movements", key = id)]
struct Moved { id: String }
fn main() {}
