#[erp_events::erp_type]
enum MovementAction { Received, Shipped { carrier: String }, Transferred(u32) }
fn main() {}
