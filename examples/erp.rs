//! The whole demo ERP: the seed's five topics in one application, with the three things a
//! Kafka pipeline must get right, shown in the log and the summary:
//!
//! - a **retried handler**: search-sync's index times out once; it is retried after 1 s;
//! - a **poison pill**: a legacy exporter writes CSV to the sales topic; each sales consumer
//!   sends it to `erp.sales.transactions.DLT` with the reason, and goes on;
//! - a **duplicate**: the ETL service re-sends a sale with the same `eventId`; each group
//!   handles it once.
//!
//! It also serves the health endpoint (`ERP_HEALTH_ADDR`, else a free local port) and prints
//! where to scrape it and what a readiness probe saw before the shutdown.
//!
//! `cargo run --example erp`

use erp_events::{App, Config};

#[tokio::main]
async fn main() -> Result<(), erp_demo::demo::DemoError> {
    // Warnings show each retry and each dead letter as it happens.
    erp_demo::demo::log_warnings();
    let mut config = Config::from_env();
    config
        .health
        .get_or_insert_with(|| "127.0.0.1:0".to_owned());
    let app = App::from_config(&config, erp_events::catalog!())?;
    println!("{}", erp_demo::erp::run(app).await?);
    Ok(())
}
