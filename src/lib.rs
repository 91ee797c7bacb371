//! A small demo ERP built on erp-events: one module per topic of the seed's topic table.
//!
//! The examples (`cargo run --example <name>`) and the integration tests use these modules.

pub mod inventory;
