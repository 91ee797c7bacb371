use erp_events::Envelope;
#[path = "../../support/inventory_event.rs"]
mod event;
use event::InventoryMovement;

#[erp_events::erp_listener(group = "analytics")]
async fn on_movement(event: Envelope<InventoryMovement>) { let _ = event; }

#[erp_events::erp_listener(group = "search-sync")]
async fn on_movement_bool(event: Envelope<InventoryMovement>) -> bool { let _ = event; true }
fn main() {}
