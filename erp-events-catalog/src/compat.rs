//! Schema evolution: a new version must be readable by consumers of the version before it.

use crate::schema::EventSchema;

/// One way in which a newer schema version breaks consumers of the older one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incompatibility {
    /// A property the older version had is gone.
    Removed(String),
    /// A property that was optional (or new) is now required.
    NowRequired(String),
    /// A property changed its JSON type or became nullable.
    TypeChanged {
        /// The property.
        name: String,
        /// Its type in the older version, e.g. `integer`.
        before: String,
        /// Its type in the newer version.
        after: String,
    },
}

impl std::fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Incompatibility::Removed(name) => write!(f, "property `{name}` was removed"),
            Incompatibility::NowRequired(name) => {
                write!(f, "property `{name}` is required but was not before")
            }
            Incompatibility::TypeChanged {
                name,
                before,
                after,
            } => write!(f, "property `{name}` changed type from {before} to {after}"),
        }
    }
}

/// Lists what in `newer` breaks consumers of `older`; empty when `newer` only adds optional
/// properties (the only backward-compatible change).
pub fn check_backward_compatible(older: &EventSchema, newer: &EventSchema) -> Vec<Incompatibility> {
    let mut problems = Vec::new();
    for before in &older.properties {
        match newer.property(&before.name) {
            None => problems.push(Incompatibility::Removed(before.name.clone())),
            Some(after) => {
                let (old_type, new_type) = (type_label(before), type_label(after));
                if old_type != new_type {
                    problems.push(Incompatibility::TypeChanged {
                        name: before.name.clone(),
                        before: old_type,
                        after: new_type,
                    });
                } else if after.required && !before.required {
                    problems.push(Incompatibility::NowRequired(before.name.clone()));
                }
            }
        }
    }
    problems.extend(
        newer
            .properties
            .iter()
            .filter(|p| p.required && older.property(&p.name).is_none())
            .map(|p| Incompatibility::NowRequired(p.name.clone())),
    );
    problems
}

fn type_label(property: &crate::schema::Property) -> String {
    let mut label = property.json_type.as_str().to_owned();
    if property.nullable {
        label.push_str(" or null");
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(properties: &str, required: &str) -> EventSchema {
        EventSchema::parse(&format!(
            r#"{{"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "T",
                "type": "object", "properties": {{ {properties} }}, "required": [{required}] }}"#
        ))
        .unwrap()
    }

    #[test]
    fn adding_an_optional_property_is_compatible() {
        let v1 = schema(r#""id": {"type": "string"}"#, r#""id""#);
        let v2 = schema(
            r#""id": {"type": "string"}, "note": {"type": ["string", "null"]}"#,
            r#""id""#,
        );
        assert_eq!(check_backward_compatible(&v1, &v2), []);
    }

    #[test]
    fn removals_new_requirements_and_type_changes_are_not() {
        let v1 = schema(
            r#""id": {"type": "string"}, "qty": {"type": "integer"}, "note": {"type": "string"}"#,
            r#""id", "qty""#,
        );
        let v2 = schema(
            r#""qty": {"type": "number"}, "note": {"type": "string"}, "site": {"type": "string"}"#,
            r#""qty", "note", "site""#,
        );
        let problems: Vec<String> = check_backward_compatible(&v1, &v2)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            [
                "property `id` was removed",
                "property `note` is required but was not before",
                "property `qty` changed type from integer to number",
                "property `site` is required but was not before",
            ]
        );
    }
}
