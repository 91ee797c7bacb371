//! The schema writer never changes a published version so that its readers break: it refuses,
//! and says to bump the version. Nor does it put a second event struct on a topic.

mod common;

use common::InventoryMovement;
use erp_events::schema::{SchemaChange, SchemaWriter};
use erp_events::{Catalog, Event};

const CATALOG: &str = r#"
[[topic]]
name = "erp.inventory.movements"
producer = "inventory-service"
consumers = ["search-sync"]
partitions = 6
purpose = "Stock movements"
"#;

#[test]
fn an_incompatible_change_to_a_published_version_is_refused() {
    let dir = std::env::temp_dir().join(format!("erp-schema-writer-{}", std::process::id()));
    let folder = dir.join(InventoryMovement::TOPIC);
    std::fs::create_dir_all(&folder).unwrap();
    let catalog = Catalog::parse(&dir, CATALOG).unwrap();
    let writer = SchemaWriter::new(&catalog).event::<InventoryMovement>();
    writer.write().unwrap();
    let path = catalog.schema_path(InventoryMovement::TOPIC, "INVENTORY_MOVEMENT", 1);
    // As if v1 had been published with `quantity` as a string: the type now writes a number.
    let published = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"format\": \"int64\",\n      ", "")
        .replace("\"type\": \"integer\"", "\"type\": \"string\"");
    std::fs::write(&path, &published).unwrap();

    let changes = writer.write().unwrap();
    assert!(
        matches!(&changes[0].1, SchemaChange::Incompatible(lines) if lines.iter().any(|l| l.contains("quantity"))),
        "{changes:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        published,
        "v1 untouched"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_event_struct_on_a_topic_is_refused() {
    let dir = std::env::temp_dir().join(format!("erp-schema-taken-{}", std::process::id()));
    let folder = dir.join(InventoryMovement::TOPIC);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("STOCK_COUNTED.v1.json"), "{}").unwrap();
    let catalog = Catalog::parse(&dir, CATALOG).unwrap();

    let changes = SchemaWriter::new(&catalog)
        .event::<InventoryMovement>()
        .write()
        .unwrap();
    assert_eq!(
        changes[0].1,
        SchemaChange::TopicTaken(vec!["STOCK_COUNTED".to_owned()])
    );
    let path = catalog.schema_path(InventoryMovement::TOPIC, "INVENTORY_MOVEMENT", 1);
    assert!(!path.exists(), "nothing written");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_test_every_event_brings_writes_its_schema_when_asked() {
    let dir = std::env::temp_dir().join(format!("erp-schema-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let catalog = Catalog::parse(&dir, CATALOG).unwrap();
    let path = catalog.schema_path(InventoryMovement::TOPIC, "INVENTORY_MOVEMENT", 1);
    // Without the variable: nothing written (the build checks the schemas).
    erp_events::__private::write_schema::<InventoryMovement>(&catalog);
    assert!(!path.exists());
    // SAFETY: no other test of this binary reads the environment.
    unsafe { std::env::set_var(erp_events::schema::WRITE_SCHEMAS_VAR, "1") };
    erp_events::__private::write_schema::<InventoryMovement>(&catalog);
    unsafe { std::env::remove_var(erp_events::schema::WRITE_SCHEMAS_VAR) };
    let written = std::fs::read_to_string(&path).unwrap();
    let workspace = std::fs::read_to_string(erp_events::catalog!().schema_path(
        InventoryMovement::TOPIC,
        "INVENTORY_MOVEMENT",
        1,
    ))
    .unwrap();
    assert_eq!(written, workspace, "what the writer derives from the type");
    std::fs::remove_dir_all(&dir).unwrap();
}
