use erp_events::{Envelope, HandlerError};
#[path = "../../support/inventory_event.rs"]
mod event;
use event::InventoryMovement;

// `finance` consumes purchase events, not inventory movements.
#[erp_events::erp_listener(group = "finance")]
async fn on_movement(_event: Envelope<InventoryMovement>) -> Result<(), HandlerError> { Ok(()) }
fn main() {}
