//! Writes (`write`) or checks (`check`) the schema file of every event of the demo ERP from its
//! Rust type: `ERP_EVENTS_WRITE_SCHEMAS=1 cargo run --bin erp-schemas -- write`.

use std::process::ExitCode;

fn main() -> ExitCode {
    erp_demo::schema_writer(erp_events::catalog!()).run(std::env::args().skip(1))
}
