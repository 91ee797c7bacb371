//! A small demo ERP built on erp-events: one module per topic of the seed's topic table, each
//! with its events and its consumer groups' listeners.
//!
//! The examples (`cargo run --example <name>`) run these modules; the integration tests run the
//! same code and check what the listeners did.

pub mod apache_kafka;
pub mod audit;
pub mod clinical;
pub mod demo;
pub mod erp;
pub mod inventory;
pub mod migration;
pub mod purchase;
pub mod sales;

/// The schema writer for every event of the demo ERP (the `erp-schemas` command and the test
/// that committed schemas match the types use it).
pub fn schema_writer(catalog: &erp_events::Catalog) -> erp_events::schema::SchemaWriter<'_> {
    erp_events::schema::SchemaWriter::new(catalog)
        .event::<inventory::InventoryMovement>()
        .event::<purchase::PurchaseOrderEvent>()
        .event::<sales::SaleCompleted>()
        .event::<clinical::ClinicalCaseEvent>()
        .event::<audit::AuditRecord>()
}
