#[erp_events::erp_event(topic = "erp.inventory.movement", key = id)]
struct Moved { id: String }
fn main() {}
