#[erp_events::erp_type(rename_all = "camelCase")]
enum MovementAction { Received }

#[erp_events::erp_type]
fn not_a_type() {}
fn main() {}
