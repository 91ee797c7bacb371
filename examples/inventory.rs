//! Inventory movements on the embedded broker (or `KAFKA_BROKERS`): the inventory service
//! publishes a handful of movements; search-sync indexes stock and analytics counts them.
//!
//! `cargo run --example inventory`

use erp_demo::inventory::{
    InventoryMovement, MovementAction, MovementStats, StockIndex, count_movements, sync_stock_index,
};
use erp_events::{App, Config, EventContext, ListenerExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Configuration comes from the environment; with nothing set, everything is embedded.
    let app = App::from_config(&Config::from_env(), erp_events::catalog!())?;
    let publisher = app.kafka().publisher("inventory-service")?;
    let (index, stats) = (StockIndex::default(), MovementStats::default());
    let running = app
        .listener(sync_stock_index.with_state(index.clone()))
        .listener(count_movements.with_state(stats.clone()))
        .start()?;

    let movements = [
        InventoryMovement::new("SKU-100", "WH-EAST", MovementAction::Received, 40),
        InventoryMovement::new("SKU-200", "WH-EAST", MovementAction::Received, 12),
        InventoryMovement::new("SKU-100", "WH-EAST", MovementAction::Shipped, 5),
        InventoryMovement::transfer("SKU-100", "WH-EAST", "WH-WEST", 10),
        InventoryMovement::new("SKU-200", "WH-EAST", MovementAction::Shipped, 2),
    ];
    // The user who acts; every envelope published in this scope names them.
    EventContext::new()
        .with_user("clerk-17")
        .scope(publisher.publish_all(&movements))
        .await?;

    index.progress.wait_for(movements.len()).await;
    stats.progress.wait_for(movements.len()).await;
    let reports = running.shutdown().await;

    println!("envelopes read back by search-sync:");
    for document in index.documents() {
        println!("  {document}");
    }
    println!("stock of SKU-100: {:?}", index.stock("SKU-100"));
    println!("stock of SKU-200: {:?}", index.stock("SKU-200"));
    println!(
        "analytics (movements, units) per action: {:?}",
        stats.per_action()
    );
    for report in reports {
        println!(
            "{:>12} {:<18} handled {}",
            report.group, report.name, report.counts.handled
        );
    }
    Ok(())
}
