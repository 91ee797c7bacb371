//! The committed schemas are exactly what the schema writer derives from the Rust types.

use erp_events::schema::SchemaChange;

#[test]
fn every_committed_schema_is_what_the_writer_writes() {
    let writer = erp_demo::schema_writer(erp_events::catalog!());
    let changes = writer.changes();
    assert!(!changes.is_empty());
    for (path, change) in changes {
        assert_eq!(
            change,
            SchemaChange::Unchanged,
            "{}: run `ERP_EVENTS_WRITE_SCHEMAS=1 cargo test erp_events_write_schema`",
            path.display()
        );
    }
    assert_eq!(writer.incompatibilities(), Vec::<String>::new());
}
