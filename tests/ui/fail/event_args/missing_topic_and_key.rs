#[erp_events::erp_event(version = 1)]
struct Moved { id: String }
fn main() {}
