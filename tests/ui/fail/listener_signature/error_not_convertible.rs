use erp_events::Envelope;
#[path = "../../support/inventory_event.rs"]
mod event;
use event::InventoryMovement;

#[erp_events::erp_listener(group = "analytics")]
async fn on_movement(_event: Envelope<InventoryMovement>) -> Result<(), u32> { Err(7) }
fn main() {}
