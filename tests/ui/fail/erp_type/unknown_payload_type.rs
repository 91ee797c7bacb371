struct Warehouse { code: String }

#[erp_events::erp_type]
struct Location { warehouse: Warehouse, bin: String }
fn main() {}
