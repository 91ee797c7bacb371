use erp_events::{Envelope, HandlerError};
#[path = "../../support/inventory_event.rs"]
mod event;
use event::InventoryMovement;

#[erp_events::erp_listener(group = "analytics")]
async fn on_movement(_event: Envelope<InventoryMovement>, index: Vec<String>) -> Result<(), HandlerError> { let _ = index; Ok(()) }
fn main() {}
