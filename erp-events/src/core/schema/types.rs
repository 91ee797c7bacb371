//! The JSON shape of Rust types used in payloads.

use std::collections::{BTreeMap, HashMap};

use erp_events_catalog::{JsonType, Property};
use serde_json::{Map, Value, json};

/// The JSON Schema of one Rust type: its JSON type, whether it may be `null`, and any detail.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeSchema {
    /// The JSON type.
    pub json_type: JsonType,
    /// Whether `null` is a value of the type (`Option<T>`).
    pub nullable: bool,
    /// Keywords beyond `type` (`items`, `enum`, `format`, `properties`, ...).
    pub detail: Map<String, Value>,
}

impl TypeSchema {
    /// A schema of `json_type` with no detail.
    pub fn of(json_type: JsonType) -> Self {
        TypeSchema {
            json_type,
            nullable: false,
            detail: Map::new(),
        }
    }

    /// Adds a keyword.
    pub fn with(mut self, keyword: &str, value: Value) -> Self {
        self.detail.insert(keyword.to_owned(), value);
        self
    }

    /// The schema as a property of an object (required unless nullable).
    pub fn into_property(self, name: &str, description: &str) -> Property {
        let mut detail = self.detail;
        if !description.is_empty() {
            detail.insert("description".into(), Value::from(description));
        }
        Property {
            name: name.to_owned(),
            json_type: self.json_type,
            nullable: self.nullable,
            required: !self.nullable,
            detail,
        }
    }

    /// An object schema with `properties` (sorted by name, as the catalog keeps them).
    pub fn object(mut properties: Vec<Property>) -> Self {
        properties.sort_by(|a, b| a.name.cmp(&b.name));
        let required: Vec<&str> = properties
            .iter()
            .filter(|p| p.required)
            .map(|p| p.name.as_str())
            .collect();
        let required = json!(required);
        let properties: Map<String, Value> = properties
            .iter()
            .map(|p| (p.name.clone(), p.to_json()))
            .collect();
        TypeSchema::of(JsonType::Object)
            .with("properties", Value::Object(properties))
            .with("required", required)
    }

    fn to_json(&self) -> Value {
        self.clone().into_property("", "").to_json()
    }
}

/// A Rust type that can appear in an event payload, with the JSON Schema serde gives it.
///
/// Implemented for strings, numbers, booleans, UUIDs, `Option`, `Vec` and string-keyed maps,
/// by `#[erp_type]` for enums and structs, and with the `chrono` and `decimal` features for
/// instants, dates and decimal money.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used in an event payload",
    label = "no JSON schema is known for this type",
    note = "mark the type `#[erp_type]`, or use a string, number, boolean, UUID, `Option`, `Vec` or map (instants, dates and decimals: erp-events' `chrono` and `decimal` features)"
)]
pub trait PayloadType {
    /// The type's schema.
    fn type_schema() -> TypeSchema;
}

macro_rules! kind_trait {
    ($trait:ident, $doc:literal, $message:literal, $label:literal) => {
        #[doc = $doc]
        #[diagnostic::on_unimplemented(
            message = $message,
            label = $label,
            note = "change the field's type back: a published schema version never changes incompatibly; to change the type, bump the event's `version` and write that version's schema (`ERP_EVENTS_WRITE_SCHEMAS=1 cargo test erp_events_write_schema`)"
        )]
        pub trait $trait {}
        impl<T: $trait> $trait for Option<T> {}
        impl<T: $trait> $trait for Box<T> {}
    };
}

kind_trait!(
    JsonString,
    "A type serde writes as a JSON string.",
    "the schema says this field is a JSON string, but `{Self}` is not written as one",
    "expected a type written as a JSON string"
);
kind_trait!(
    JsonInteger,
    "A type serde writes as a JSON integer.",
    "the schema says this field is a JSON integer, but `{Self}` is not written as one",
    "expected a type written as a JSON integer"
);
kind_trait!(
    JsonNumber,
    "A type serde writes as a JSON number with a fraction.",
    "the schema says this field is a JSON number, but `{Self}` is not written as one",
    "expected `f64` or `f32`"
);
kind_trait!(
    JsonBoolean,
    "A type serde writes as a JSON boolean.",
    "the schema says this field is a JSON boolean, but `{Self}` is not written as one",
    "expected `bool`"
);
kind_trait!(
    JsonArray,
    "A type serde writes as a JSON array.",
    "the schema says this field is a JSON array, but `{Self}` is not written as one",
    "expected a `Vec<_>`"
);
kind_trait!(
    JsonObject,
    "A type serde writes as a JSON object.",
    "the schema says this field is a JSON object, but `{Self}` is not written as one",
    "expected an `#[erp_type]` struct or a map with string keys"
);

macro_rules! primitives {
    ($kind:ident, $json:expr, $($t:ty => $format:expr),*) => {$(
        impl $kind for $t {}
        impl PayloadType for $t {
            fn type_schema() -> TypeSchema {
                let schema = TypeSchema::of($json);
                match $format {
                    Some(format) => schema.with("format", Value::from(format)),
                    None => schema,
                }
            }
        }
    )*};
}

primitives!(JsonString, JsonType::String, String => None::<&str>, uuid::Uuid => Some("uuid"));
primitives!(JsonInteger, JsonType::Integer,
    i8 => Some("int8"), i16 => Some("int16"), i32 => Some("int32"), i64 => Some("int64"),
    u8 => Some("uint8"), u16 => Some("uint16"), u32 => Some("uint32"), u64 => Some("uint64"));
primitives!(JsonNumber, JsonType::Number, f32 => Some("float"), f64 => Some("double"));
primitives!(JsonBoolean, JsonType::Boolean, bool => None::<&str>);
#[cfg(feature = "chrono")]
primitives!(JsonString, JsonType::String,
    chrono::DateTime<chrono::Utc> => Some("date-time"), chrono::NaiveDate => Some("date"));
#[cfg(feature = "decimal")]
primitives!(JsonString, JsonType::String, rust_decimal::Decimal => Some("decimal"));

impl<T: PayloadType> PayloadType for Option<T> {
    fn type_schema() -> TypeSchema {
        TypeSchema {
            nullable: true,
            ..T::type_schema()
        }
    }
}

impl<T: PayloadType> PayloadType for Box<T> {
    fn type_schema() -> TypeSchema {
        T::type_schema()
    }
}

impl<T> JsonArray for Vec<T> {}
impl<T: PayloadType> PayloadType for Vec<T> {
    fn type_schema() -> TypeSchema {
        TypeSchema::of(JsonType::Array).with("items", T::type_schema().to_json())
    }
}

macro_rules! maps {
    ($($map:ident),*) => {$(
        impl<V> JsonObject for $map<String, V> {}
        impl<V: PayloadType> PayloadType for $map<String, V> {
            fn type_schema() -> TypeSchema {
                TypeSchema::of(JsonType::Object)
                    .with("additionalProperties", V::type_schema().to_json())
            }
        }
    )*};
}
maps!(BTreeMap, HashMap);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_types_describe_their_parts() {
        let list = <Vec<Option<i64>>>::type_schema();
        assert_eq!(list.json_type, JsonType::Array);
        assert_eq!(
            list.detail["items"],
            json!({"type": ["integer", "null"], "format": "int64"})
        );
        let map = <BTreeMap<String, f64>>::type_schema();
        assert_eq!(map.detail["additionalProperties"]["type"], "number");
        let property = <Option<String>>::type_schema().into_property("note", "A note.");
        assert!(property.nullable && !property.required);
        assert_eq!(property.detail["description"], "A note.");
    }

    #[test]
    fn objects_list_required_properties_sorted() {
        let object = TypeSchema::object(vec![
            <i64>::type_schema().into_property("quantity", ""),
            <Option<String>>::type_schema().into_property("note", ""),
        ]);
        assert_eq!(object.detail["required"], json!(["quantity"]));
        let keys: Vec<&String> = object.detail["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["note", "quantity"]);
    }
}
