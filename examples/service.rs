//! A service as you would write one: its event, two listeners (one with injected state), and a
//! `main` that runs until SIGINT/SIGTERM. `cargo run --example service`, then Ctrl-C. Besides
//! erp-events it uses tokio and tracing-subscriber.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use erp_events::{App, Config, Envelope, HandlerError, ListenerExt, State};
use erp_events::{erp_event, erp_listener, erp_type};

#[erp_type]
#[derive(Debug, Clone, Copy)]
pub enum MovementAction {
    Received,
    Shipped,
    Transferred,
}

/// Checked at compile time against `schemas/erp.inventory.movements/INVENTORY_MOVEMENT.v1.json`.
#[erp_event(topic = "erp.inventory.movements", key = product_id, event_type = action)]
#[derive(Debug, Clone)]
pub struct InventoryMovement {
    product_id: String,
    warehouse: String,
    action: MovementAction,
    quantity: i64,
    to_warehouse: Option<String>,
}

/// Stock per product: stands in for a search index or a database pool.
#[derive(Clone, Default)]
struct StockIndex(Arc<Mutex<BTreeMap<String, i64>>>);

/// An error is retried 3 times (1 s, 2 s, 4 s), then the record goes to the topic's DLT.
#[erp_listener(group = "search-sync", retries = 3)]
async fn sync_stock(
    event: Envelope<InventoryMovement>,
    State(index): State<StockIndex>,
) -> Result<(), HandlerError> {
    let movement = &event.payload;
    if movement.quantity <= 0 {
        return Err(HandlerError::permanent("a quantity is positive")); // to the DLT at once
    }
    let units = match movement.action {
        MovementAction::Received => movement.quantity,
        MovementAction::Shipped | MovementAction::Transferred => -movement.quantity,
    };
    let mut stock = index.0.lock().expect("not poisoned");
    *stock.entry(movement.product_id.clone()).or_default() += units;
    println!("stock: {stock:?}");
    Ok(())
}

#[erp_listener(group = "analytics")]
async fn count(event: Envelope<InventoryMovement>) -> Result<(), HandlerError> {
    println!(
        "{} by {:?}: {:?}",
        event.event_type, event.user_id, event.payload
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Retries, dead letters and stalls are logged: without a subscriber they are not seen.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .init();
    // KAFKA_BROKERS, REDIS_URL, ERP_IN_PROCESS_TOPICS; unset: embedded broker, in-memory dedup.
    let app = App::from_config(&Config::from_env(), erp_events::catalog!())?;
    app.ready().await?; // the broker and Redis answer, or a clear error says why (within 10 s)
    let publisher = app.publisher("inventory-service")?;
    let received = InventoryMovement {
        product_id: "SKU-1".into(),
        warehouse: "WH-1".into(),
        action: MovementAction::Received,
        quantity: 5,
        to_warehouse: None,
    };
    let delivery = publisher.publish(&received).await?; // resolves on the broker's ack
    println!(
        "published at partition {} offset {}",
        delivery.partition, delivery.offset
    );
    let app = app
        .listener(sync_stock.with_state(StockIndex::default()))
        .listener(count);
    for report in app.run_until_signal().await? {
        println!("{} handled {} events", report.name, report.counts.handled);
    }
    Ok(())
}
