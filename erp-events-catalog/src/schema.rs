//! Event payload schemas: the subset of JSON Schema (draft 2020-12) the catalog uses.
//!
//! A schema describes one version of one event payload: an object whose properties each have a
//! JSON type, may be nullable, and may be required. Nested detail (array items, string formats,
//! enum values) is kept as written and compared as a whole.

use serde_json::{Map, Value, json};

/// The JSON Schema dialect every catalog schema declares.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The file name of version `version` of the schema `name`: `NAME.v<version>.json`.
pub fn schema_file_name(name: &str, version: u32) -> String {
    format!("{name}.v{version}.json")
}

/// The inverse of [`schema_file_name`]; `None` for any other file name.
pub(crate) fn parse_schema_file_name(file: &str) -> Option<(String, u32)> {
    let stem = file.strip_suffix(".json")?;
    let (name, version) = stem.rsplit_once(".v")?;
    let version = version.parse().ok().filter(|&v| v >= 1)?;
    (!name.is_empty()).then(|| (name.to_owned(), version))
}

/// The JSON type of a property (`null` is expressed by [`Property::nullable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonType {
    /// `"string"`.
    String,
    /// `"integer"`.
    Integer,
    /// `"number"`.
    Number,
    /// `"boolean"`.
    Boolean,
    /// `"array"`.
    Array,
    /// `"object"`.
    Object,
}

impl JsonType {
    /// Every type, in the order they are listed in messages.
    pub const ALL: [JsonType; 6] = [
        JsonType::String,
        JsonType::Integer,
        JsonType::Number,
        JsonType::Boolean,
        JsonType::Array,
        JsonType::Object,
    ];

    /// The JSON Schema keyword for this type.
    pub fn as_str(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Integer => "integer",
            JsonType::Number => "number",
            JsonType::Boolean => "boolean",
            JsonType::Array => "array",
            JsonType::Object => "object",
        }
    }

    fn parse(keyword: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == keyword)
    }
}

/// One property of an event payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// The JSON key, in camelCase.
    pub name: String,
    /// Its JSON type.
    pub json_type: JsonType,
    /// Whether `null` is allowed (`"type": ["string", "null"]`).
    pub nullable: bool,
    /// Whether the key must be present (listed in `required`).
    pub required: bool,
    /// Keywords beyond `type` (`items`, `format`, `enum`, nested `properties`, ...), as written.
    pub detail: Map<String, Value>,
}

/// One version of one event payload's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSchema {
    /// The schema's name (its `title`), e.g. `INVENTORY_MOVEMENT`.
    pub name: String,
    /// A human description, if any.
    pub description: Option<String>,
    /// The payload's properties, sorted by name.
    pub properties: Vec<Property>,
}

/// Why a schema file could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The file is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The file is JSON but not a schema of the supported shape.
    #[error("{0}")]
    Unsupported(String),
}

impl EventSchema {
    /// The property with JSON key `name`.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// Parses the text of a schema file.
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        let root: Value =
            serde_json::from_str(text).map_err(|e| SchemaError::NotJson(e.to_string()))?;
        let unsupported = |message: &str| SchemaError::Unsupported(message.to_owned());
        let root = root
            .as_object()
            .ok_or_else(|| unsupported("a schema is a JSON object"))?;
        if root.get("$schema").and_then(Value::as_str) != Some(DIALECT) {
            return Err(unsupported(&format!("`$schema` must be `{DIALECT}`")));
        }
        if root.get("type").and_then(Value::as_str) != Some("object") {
            return Err(unsupported(
                "an event payload schema has `\"type\": \"object\"`",
            ));
        }
        let name = root
            .get("title")
            .and_then(Value::as_str)
            .ok_or_else(|| unsupported("`title` (the schema name) is missing"))?
            .to_owned();
        let required: Vec<&str> = match root.get("required") {
            None => Vec::new(),
            Some(list) => list
                .as_array()
                .and_then(|items| items.iter().map(Value::as_str).collect())
                .ok_or_else(|| unsupported("`required` must be an array of strings"))?,
        };
        let declared = root
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| unsupported("`properties` must be an object"))?;
        if let Some(missing) = required.iter().find(|key| !declared.contains_key(**key)) {
            return Err(unsupported(&format!(
                "`required` lists `{missing}`, which is not in `properties`"
            )));
        }
        let mut properties = declared
            .iter()
            .map(|(key, schema)| parse_property(key, schema, required.contains(&key.as_str())))
            .collect::<Result<Vec<_>, _>>()?;
        properties.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(EventSchema {
            name,
            description: root
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            properties,
        })
    }

    /// The schema as a JSON Schema document with a stable layout (what the schema writer commits).
    pub fn to_json(&self, topic: &str, version: u32) -> Value {
        let properties: Map<String, Value> = self
            .properties
            .iter()
            .map(|p| (p.name.clone(), p.to_json()))
            .collect();
        let required: Vec<&str> = self
            .properties
            .iter()
            .filter(|p| p.required)
            .map(|p| p.name.as_str())
            .collect();
        let mut root = json!({
            "$schema": DIALECT,
            "$id": format!("urn:erp-events:{topic}:{}:v{version}", self.name),
            "title": self.name,
            "type": "object",
            "properties": properties,
            "required": required,
        });
        if let Some(description) = &self.description {
            root["description"] = Value::from(description.as_str());
        }
        root
    }

    /// [`EventSchema::to_json`] as the pretty-printed text of a schema file.
    pub fn to_file_text(&self, topic: &str, version: u32) -> String {
        let mut text = serde_json::to_string_pretty(&self.to_json(topic, version))
            .expect("a JSON value always serializes");
        text.push('\n');
        text
    }
}

impl Property {
    /// The property's own schema (`type` plus its detail keywords).
    pub fn to_json(&self) -> Value {
        let mut schema = self.detail.clone();
        let kind = Value::from(self.json_type.as_str());
        let type_value = if self.nullable {
            Value::Array(vec![kind, Value::from("null")])
        } else {
            kind
        };
        schema.insert("type".into(), type_value);
        Value::Object(schema)
    }
}

fn parse_property(name: &str, schema: &Value, required: bool) -> Result<Property, SchemaError> {
    let unsupported =
        |message: String| SchemaError::Unsupported(format!("property `{name}`: {message}"));
    let mut detail = schema
        .as_object()
        .ok_or_else(|| unsupported("its schema must be an object".into()))?
        .clone();
    let type_value = detail
        .remove("type")
        .ok_or_else(|| unsupported("`type` is missing".into()))?;
    let keywords: Vec<&str> = match &type_value {
        Value::String(keyword) => vec![keyword.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let nullable = keywords.contains(&"null");
    let types: Vec<JsonType> = keywords.iter().filter_map(|k| JsonType::parse(k)).collect();
    match types.as_slice() {
        [json_type] if keywords.len() == usize::from(nullable) + 1 => Ok(Property {
            name: name.to_owned(),
            json_type: *json_type,
            nullable,
            required,
            detail,
        }),
        _ => Err(unsupported(format!(
            "`type` must be one JSON type, optionally with \"null\"; found {type_value}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOVEMENT: &str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "INVENTORY_MOVEMENT",
        "type": "object",
        "properties": {
            "productId": { "type": "string" },
            "quantity": { "type": "integer", "format": "int64" },
            "note": { "type": ["string", "null"] },
            "action": { "type": "string", "enum": ["RECEIVED", "SHIPPED"] }
        },
        "required": ["productId", "quantity", "action"]
    }"#;

    #[test]
    fn parses_types_nullability_and_required() {
        let schema = EventSchema::parse(MOVEMENT).unwrap();
        assert_eq!(schema.name, "INVENTORY_MOVEMENT");
        let names: Vec<&str> = schema.properties.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["action", "note", "productId", "quantity"]);
        let note = schema.property("note").unwrap();
        assert_eq!(
            (note.json_type, note.nullable, note.required),
            (JsonType::String, true, false)
        );
        let quantity = schema.property("quantity").unwrap();
        assert_eq!(
            (quantity.json_type, quantity.required),
            (JsonType::Integer, true)
        );
        assert_eq!(quantity.detail["format"], "int64");
    }

    #[test]
    fn written_text_parses_back_to_the_same_schema() {
        let schema = EventSchema::parse(MOVEMENT).unwrap();
        let text = schema.to_file_text("erp.inventory.movements", 1);
        assert_eq!(EventSchema::parse(&text).unwrap(), schema);
        assert!(
            text.contains(
                "\"$id\": \"urn:erp-events:erp.inventory.movements:INVENTORY_MOVEMENT:v1\""
            )
        );
    }

    #[test]
    fn rejects_what_it_cannot_check() {
        let cases = [
            ("[]", "JSON object"),
            ("{", "not JSON"),
            (&MOVEMENT.replace("2020-12", "2019-09"), "$schema"),
            (
                &MOVEMENT.replace("\"title\": \"INVENTORY_MOVEMENT\",", ""),
                "title",
            ),
            (
                &MOVEMENT.replace("\"type\": \"integer\", ", ""),
                "`type` is missing",
            ),
            (
                &MOVEMENT.replace("[\"string\", \"null\"]", "[\"string\", \"integer\"]"),
                "one JSON type",
            ),
            (
                &MOVEMENT.replace("\"quantity\", \"action\"", "\"qty\""),
                "`qty`",
            ),
        ];
        for (text, expected) in cases {
            let error = EventSchema::parse(text).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error} should mention {expected}"
            );
        }
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(
            schema_file_name("SALE_COMPLETED", 3),
            "SALE_COMPLETED.v3.json"
        );
        assert_eq!(
            parse_schema_file_name("SALE_COMPLETED.v3.json"),
            Some(("SALE_COMPLETED".into(), 3))
        );
        assert_eq!(parse_schema_file_name("SALE_COMPLETED.v0.json"), None);
        assert_eq!(parse_schema_file_name("README.md"), None);
    }
}
