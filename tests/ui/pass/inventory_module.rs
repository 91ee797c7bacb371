//! The demo's inventory module, compiled against the real catalog.
#[path = "../../../src/demo.rs"]
mod demo;
#[path = "../../../src/inventory.rs"]
mod inventory;

fn main() {
    let _ = inventory::sync_stock_index;
}
