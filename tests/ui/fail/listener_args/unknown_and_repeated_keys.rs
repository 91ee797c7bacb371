use erp_events::{Envelope, HandlerError};
#[path = "../../support/inventory_event.rs"]
mod event;
use event::InventoryMovement;

#[erp_events::erp_listener(group = "analytics", retries = 2, retries = 3, max_attempts = 4, idempotant = false)]
async fn on_movement(_event: Envelope<InventoryMovement>) -> Result<(), HandlerError> { Ok(()) }
fn main() {}
