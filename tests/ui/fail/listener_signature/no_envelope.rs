use erp_events::HandlerError;
#[path = "../../support/inventory_event.rs"]
mod event;
use event::InventoryMovement;

#[erp_events::erp_listener(group = "analytics")]
async fn on_movement(movement: InventoryMovement) -> Result<(), HandlerError> { let _ = movement; Ok(()) }
fn main() {}
