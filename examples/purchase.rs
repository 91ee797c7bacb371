//! Purchase orders (`erp.purchase.lifecycle`): finance books commitments and payables, inventory tracks expected receipts (`src/purchase.rs`).
//!
//! `cargo run --example purchase` (embedded broker; `ERP_IN_PROCESS_TOPICS=*` runs it without Kafka).

fn main() -> Result<(), erp_demo::demo::DemoError> {
    erp_demo::demo::main::<erp_demo::purchase::Purchasing>()
}
