//! Inventory movements, spelled out: the inventory service publishes a handful of movements;
//! search-sync indexes stock and analytics counts them (the events and listeners are in
//! `src/inventory.rs`).
//!
//! `cargo run --example inventory` (embedded broker; `KAFKA_BROKERS`, `REDIS_URL` and
//! `ERP_IN_PROCESS_TOPICS` change where events and dedup state go, not this code).

use erp_demo::demo::{ReportTable, until_finished};
use erp_demo::inventory::{
    InventoryMovement, MovementStats, StockIndex, count_movements, sample_movements,
    sync_stock_index,
};
use erp_events::{App, Config, Event, EventContext, ListenerExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Retries and dead letters show as warnings on stderr.
    erp_demo::demo::log_warnings();
    // Configuration comes from the environment; with nothing set, everything is embedded.
    let app = App::from_config(&Config::from_env(), erp_events::catalog!())?;
    let publisher = app.publisher("inventory-service")?;
    // Each listener gets its state (a search client, a database pool...) as axum's `State`.
    let (index, stats) = (StockIndex::default(), MovementStats::default());
    let running = app
        .listener(sync_stock_index.with_state(index.clone()))
        .listener(count_movements.with_state(stats.clone()))
        .start()?;

    // Movements are plain structs; `#[erp_event]` made them events of their topic.
    let movements = sample_movements();
    // The user who acts; every envelope published in this scope names them.
    let deliveries = EventContext::new()
        .with_user("clerk-17")
        .scope(publisher.publish_all(&movements))
        .await?;
    for delivery in &deliveries {
        println!(
            "published {} to partition {} at offset {}",
            delivery.event_id, delivery.partition, delivery.offset
        );
    }

    let published = [(InventoryMovement::TOPIC, deliveries.len() as u64)];
    until_finished(&running, &published).await;
    let reports = running.shutdown().await;

    println!("envelopes as search-sync indexed them:");
    for document in index.documents() {
        println!("  {document}");
    }
    for (product, warehouses) in index.stock() {
        println!("stock of {product}: {warehouses:?}");
    }
    println!(
        "analytics (movements, units) per action: {:?}",
        stats.per_action()
    );
    print!("{}", ReportTable(&reports));
    Ok(())
}
