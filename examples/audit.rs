//! The audit trail (`erp.audit.events`), written by every module: audit appends, compliance flags sensitive actions by non-approvers (`src/audit.rs`).
//!
//! `cargo run --example audit` (embedded broker; `ERP_IN_PROCESS_TOPICS=*` runs it without Kafka).

fn main() -> Result<(), erp_demo::demo::DemoError> {
    erp_demo::demo::main::<erp_demo::audit::Audit>()
}
