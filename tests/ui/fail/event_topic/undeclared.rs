#[erp_events::erp_event(topic = "erp.payroll.runs", key = id)]
struct PayrollRun { id: String }
fn main() {}
