use erp_events::{Envelope, HandlerError};
#[path = "../../support/inventory_event.rs"]
mod event;
use event::InventoryMovement;

#[erp_events::erp_listener(group = "analytics", backoff(initial_ms = 5000, max_ms = 100, jitter = true))]
async fn on_movement(_event: Envelope<InventoryMovement>) -> Result<(), HandlerError> { Ok(()) }
fn main() {}
