use erp_events::{Envelope, HandlerError};

struct NotAnEvent;

#[erp_events::erp_listener(group = "analytics")]
async fn on_movement(_event: Envelope<NotAnEvent>) -> Result<(), HandlerError> { Ok(()) }
fn main() {}
