//! Completed sales (`erp.sales.transactions`): analytics sums revenue, fifo costs each sale from the oldest cost layers; an oversold sale goes to the dead-letter topic (`src/sales.rs`).
//!
//! `cargo run --example sales` (embedded broker; `ERP_IN_PROCESS_TOPICS=*` runs it without Kafka).

fn main() -> Result<(), erp_demo::demo::DemoError> {
    erp_demo::demo::main::<erp_demo::sales::Sales>()
}
