use erp_events::HandlerError;

#[erp_events::erp_listener(group = "analytics")]
async fn on_movement() -> Result<(), HandlerError> { Ok(()) }
fn main() {}
