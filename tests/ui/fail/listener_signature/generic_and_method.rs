use erp_events::{Envelope, HandlerError};
#[path = "../../support/inventory_event.rs"]
mod event;
use event::InventoryMovement;

#[erp_events::erp_listener(group = "analytics")]
async fn on_movement<T>(_event: Envelope<InventoryMovement>, _extra: T, _more: u8) -> Result<(), HandlerError> { Ok(()) }
fn main() {}
