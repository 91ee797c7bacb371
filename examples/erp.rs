//! The whole demo ERP: the seed's five topics in one application, with the three things a
//! Kafka pipeline must get right, shown in the log and the summary:
//!
//! - a **retried handler**: search-sync's index times out once; it is retried after 1 s;
//! - a **poison pill**: a legacy exporter writes CSV to the sales topic; each sales consumer
//!   sends it to `erp.sales.transactions.DLT` with the reason, and goes on;
//! - a **duplicate**: the ETL service re-sends a sale with the same `eventId`; each group
//!   handles it once.
//!
//! `cargo run --example erp`

use erp_events::{App, Config};

#[tokio::main]
async fn main() -> Result<(), erp_demo::demo::DemoError> {
    // Warnings show each retry and each dead letter as it happens.
    erp_demo::demo::log_warnings();
    let app = App::from_config(&Config::from_env(), erp_events::catalog!())?;
    println!("{}", erp_demo::erp::run(app).await?);
    Ok(())
}
