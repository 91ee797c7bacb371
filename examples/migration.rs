//! Moving a module from in-process events to Kafka by configuration only (the seed's V2/V3
//! coexistence): the same purchasing code runs twice, first with every topic in process (no
//! Kafka at all), then with `erp.purchase.lifecycle` on Kafka; sales, a module that publishes
//! nothing yet, lives beside it in both phases (`src/migration.rs`).
//!
//! `cargo run --example migration`

use erp_demo::migration::{Phase, run};

#[tokio::main]
async fn main() -> Result<(), erp_demo::demo::DemoError> {
    erp_demo::demo::log_warnings();
    for phase in [Phase::BeforeKafka, Phase::PurchasingOnKafka] {
        println!("{}", run(phase).await?);
    }
    Ok(())
}
