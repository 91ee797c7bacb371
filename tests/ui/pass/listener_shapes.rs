use erp_events::{Envelope, HandlerError, ListenerExt, State, erp_event, erp_listener, erp_type};

#[erp_type]
#[derive(Debug, Clone, Copy)]
pub enum MovementAction { Received, Shipped, Transferred }

/// An inventory movement, as the catalog's schema says.
#[erp_event(topic = "erp.inventory.movements", key = product_id, event_type = action, version = 1)]
pub struct InventoryMovement {
    product_id: String,
    warehouse: String,
    action: MovementAction,
    quantity: i64,
    to_warehouse: Option<String>,
}

#[derive(Debug)]
struct IndexDown;
impl std::fmt::Display for IndexDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("index down") }
}
impl std::error::Error for IndexDown {}

/// Stateless, with every option.
#[erp_listener(group = "analytics", retries = 10, backoff(initial_ms = 50, multiplier = 1.5, max_ms = 5000), concurrency = 2, idempotent = false, timeout_ms = 30000)]
async fn count(_event: Envelope<InventoryMovement>) -> Result<(), HandlerError> {
    Ok(())
}

/// With state and its own error type.
#[erp_listener(group = "search-sync")]
pub async fn index(event: Envelope<InventoryMovement>, State(names): State<Vec<String>>) -> Result<(), IndexDown> {
    if names.is_empty() && event.payload.quantity < 0 { Err(IndexDown) } else { Ok(()) }
}

fn main() {
    let app = |kafka: &erp_events::Kafka| {
        erp_events::App::new(kafka).listener(count).listener(index.with_state(vec![]))
    };
    let _ = app;
    let _ = count::call;
}
