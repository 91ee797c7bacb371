use erp_events::{App, Config, Envelope, HandlerError, State};
#[path = "../../support/inventory_event.rs"]
mod event;
use event::InventoryMovement;

#[erp_events::erp_listener(group = "analytics")]
async fn count(_event: Envelope<InventoryMovement>, State(_total): State<u64>) -> Result<(), HandlerError> {
    Ok(())
}

fn main() {
    let app = App::from_config(&Config::embedded(), erp_events::catalog!()).unwrap();
    let _ = app.listener(count);
}
