//! The payload model mirrors serde: for every field form `#[erp_event]`/`#[erp_type]` accept
//! (raw identifiers, `rename`, `default`, options, lists, maps, nested types, enums), the JSON
//! serde writes validates against the schema the macros derive, and nothing is written that
//! the schema does not declare.

use std::collections::BTreeMap;

use erp_demo::inventory::{InventoryMovement, sample_movements};
use erp_events::schema::PayloadType;
use erp_events::{Event, erp_type};
use serde_json::{Value, json};

/// How fast a line must ship.
#[erp_type]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Whenever.
    Standard,
    /// Today.
    Rush,
}

/// A warehouse address.
#[erp_type]
#[derive(Debug, Clone, PartialEq)]
pub struct Address {
    /// The street.
    pub street: String,
    /// The post code, when known.
    pub post_code: Option<String>,
}

/// One order line, with every field form the payload model accepts.
#[erp_type]
#[derive(Debug, Clone, PartialEq)]
pub struct OrderLine {
    /// A raw identifier: `type` on the wire.
    pub r#type: String,
    /// Renamed.
    #[serde(rename = "qty")]
    pub quantity: i64,
    /// Defaulted when absent.
    #[serde(default)]
    pub discount_percent: f64,
    /// Optional.
    pub note: Option<String>,
    /// A list.
    pub tags: Vec<String>,
    /// A map.
    pub prices: BTreeMap<String, f64>,
    /// An enum.
    pub priority: Priority,
    /// A nested struct, optional.
    pub ship_to: Option<Address>,
    /// A UUID.
    pub order_id: uuid::Uuid,
}

/// Checks `value` against the JSON Schema `schema` (the keywords erp-events writes).
fn check(schema: &Value, value: &Value, at: &str) {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        other => panic!("{at}: a schema without a type: {other}"),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits = types.contains(&actual) || (actual == "integer" && types.contains(&"number"));
    assert!(fits, "{at}: {value} is {actual}, the schema says {types:?}");
    if let Some(allowed) = schema["enum"].as_array() {
        assert!(
            allowed.contains(value),
            "{at}: {value} is not one of {allowed:?}"
        );
    }
    match value {
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                check(&schema["items"], item, &format!("{at}[{index}]"));
            }
        }
        Value::Object(fields) if schema.get("properties").is_some() => {
            let properties = schema["properties"].as_object().unwrap();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                assert!(fields.contains_key(name), "{at}: required `{name}` missing");
            }
            for (name, field) in fields {
                let property = properties
                    .get(name)
                    .unwrap_or_else(|| panic!("{at}: `{name}` is written but not in the schema"));
                check(property, field, &format!("{at}.{name}"));
            }
        }
        Value::Object(entries) => {
            for (key, entry) in entries {
                check(
                    &schema["additionalProperties"],
                    entry,
                    &format!("{at}[{key}]"),
                );
            }
        }
        _ => {}
    }
}

fn lines() -> Vec<OrderLine> {
    let full = OrderLine {
        r#type: "goods".into(),
        quantity: 3,
        discount_percent: 12.5,
        note: Some("fragile".into()),
        tags: vec!["a".into(), "b".into()],
        prices: BTreeMap::from([("EUR".into(), 9.99), ("USD".into(), 11.0)]),
        priority: Priority::Rush,
        ship_to: Some(Address {
            street: "Kai 1".into(),
            post_code: None,
        }),
        order_id: uuid::Uuid::now_v7(),
    };
    let sparse = OrderLine {
        note: None,
        tags: vec![],
        prices: BTreeMap::new(),
        priority: Priority::Standard,
        ship_to: None,
        ..full.clone()
    };
    vec![full, sparse]
}

#[test]
fn what_serde_writes_is_what_the_schema_says() {
    let schema = OrderLine::type_schema();
    let schema = json!({
        "type": "object",
        "properties": schema.detail["properties"],
        "required": schema.detail["required"],
    });
    for line in lines() {
        let written = serde_json::to_value(&line).unwrap();
        check(&schema, &written, "OrderLine");
        assert_eq!(
            written["type"], "goods",
            "the raw identifier is `type` on the wire"
        );
        assert_eq!(written["qty"], 3, "renamed");
        assert_eq!(
            serde_json::from_value::<OrderLine>(written).unwrap(),
            line,
            "and it reads back"
        );
    }
    let without_default = json!({
        "type": "goods", "qty": 1, "note": null, "tags": [], "prices": {},
        "priority": "STANDARD", "shipTo": null, "orderId": uuid::Uuid::nil(),
    });
    let read: OrderLine = serde_json::from_value(without_default).unwrap();
    assert_eq!(
        read.discount_percent, 0.0,
        "`default` fills an absent field"
    );
}

#[test]
fn every_published_event_validates_against_its_schema_file() {
    let schema = InventoryMovement::schema();
    let file = std::fs::read_to_string(erp_events::catalog!().schema_path(
        InventoryMovement::TOPIC,
        &schema.name,
        1,
    ))
    .unwrap();
    let file: Value = serde_json::from_str(&file).unwrap();
    for movement in sample_movements() {
        check(
            &file,
            &serde_json::to_value(&movement).unwrap(),
            "InventoryMovement",
        );
    }
}
