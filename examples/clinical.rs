//! Clinical cases (`erp.vma.clinical`): audit keeps each case's history and dead-letters a stage out of the lifecycle, analytics counts stages (`src/clinical.rs`).
//!
//! `cargo run --example clinical` (embedded broker; `ERP_IN_PROCESS_TOPICS=*` runs it without Kafka).

fn main() -> Result<(), erp_demo::demo::DemoError> {
    erp_demo::demo::main::<erp_demo::clinical::Clinical>()
}
