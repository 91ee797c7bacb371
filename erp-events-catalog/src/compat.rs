//! Schema evolution: which versions of an event must read which, by the topic's compatibility
//! mode (Schema Registry's compatibility types, with their meaning).

use serde::Deserialize;

use crate::schema::{EventSchema, JsonType, Property};

/// How a topic's event schemas may change from one version to the next: Schema Registry's
/// compatibility types. `catalog.toml` names one for the catalog (`compatibility = "…"` before
/// the first `[[topic]]`) and may override it per topic; the default is `backward`, as in
/// Schema Registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compatibility {
    /// Readers of a new version read data of the version before: consumers upgrade first.
    #[default]
    Backward,
    /// [`Compatibility::Backward`] against every earlier version.
    BackwardTransitive,
    /// Readers of the version before read data of a new version: producers upgrade first.
    Forward,
    /// [`Compatibility::Forward`] against every earlier version.
    ForwardTransitive,
    /// Both: either side upgrades first.
    Full,
    /// [`Compatibility::Full`] against every earlier version.
    FullTransitive,
}

impl Compatibility {
    /// The name `catalog.toml` uses, e.g. `backward_transitive`.
    pub const fn name(self) -> &'static str {
        match self {
            Compatibility::Backward => "backward",
            Compatibility::BackwardTransitive => "backward_transitive",
            Compatibility::Forward => "forward",
            Compatibility::ForwardTransitive => "forward_transitive",
            Compatibility::Full => "full",
            Compatibility::FullTransitive => "full_transitive",
        }
    }

    /// Whether consumers built for an older version read records of a newer one (ignoring the
    /// properties they do not know): `forward` and `full`, transitive or not.
    pub const fn old_readers_read_new_data(self) -> bool {
        matches!(
            self,
            Compatibility::Forward
                | Compatibility::ForwardTransitive
                | Compatibility::Full
                | Compatibility::FullTransitive
        )
    }

    /// Whether consumers built for a newer version read records of older ones.
    const fn new_readers_read_old_data(self) -> bool {
        !matches!(
            self,
            Compatibility::Forward | Compatibility::ForwardTransitive
        )
    }

    /// Whether every earlier version is checked, not only the one before.
    const fn transitive(self) -> bool {
        matches!(
            self,
            Compatibility::BackwardTransitive
                | Compatibility::ForwardTransitive
                | Compatibility::FullTransitive
        )
    }

    /// What a new version may change under this mode, and who upgrades first.
    pub const fn allows(self) -> &'static str {
        match self {
            Compatibility::Backward | Compatibility::BackwardTransitive => {
                "a new version may remove properties and add optional ones; consumers upgrade first"
            }
            Compatibility::Forward | Compatibility::ForwardTransitive => {
                "a new version may add properties and remove optional ones; producers upgrade first"
            }
            Compatibility::Full | Compatibility::FullTransitive => {
                "a new version may only add or remove optional properties; either side upgrades first"
            }
        }
    }
}

impl std::fmt::Display for Compatibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One way in which readers of one version cannot read data written with another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incompatibility {
    /// The readers require a property the writers may leave out.
    Missing(String),
    /// The writers write a property with a JSON type the readers do not accept.
    TypeChanged {
        /// The property.
        name: String,
        /// What the readers accept, e.g. `integer`.
        reads: String,
        /// What the writers write, e.g. `string or null`.
        writes: String,
    },
}

impl std::fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Incompatibility::Missing(name) => {
                write!(f, "`{name}` is required by its readers but may be left out")
            }
            Incompatibility::TypeChanged {
                name,
                reads,
                writes,
            } => write!(f, "`{name}` is read as {reads} but written as {writes}"),
        }
    }
}

/// Readers of version `reader` cannot read data of version `writer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The version whose readers fail.
    pub reader: u32,
    /// The version whose data they fail on.
    pub writer: u32,
    /// Why.
    pub problem: Incompatibility,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (reader, writer) = (self.reader, self.writer);
        match &self.problem {
            Incompatibility::Missing(name) => write!(
                f,
                "readers of version {reader} require `{name}`, which version {writer} may leave out"
            ),
            Incompatibility::TypeChanged {
                name,
                reads,
                writes,
            } => write!(
                f,
                "readers of version {reader} read `{name}` as {reads}, version {writer} writes {writes}"
            ),
        }
    }
}

/// What in data written with `writer` readers of `reader` cannot read. Properties the readers
/// do not know are ignored (serde's default, and Jackson's in Spring Boot).
pub fn read_problems(reader: &EventSchema, writer: &EventSchema) -> Vec<Incompatibility> {
    let mut problems = Vec::new();
    for read in &reader.properties {
        match writer.property(&read.name) {
            None if read.required => problems.push(Incompatibility::Missing(read.name.clone())),
            None => {}
            Some(written) => {
                if !reads_type(read, written) {
                    problems.push(Incompatibility::TypeChanged {
                        name: read.name.clone(),
                        reads: type_label(read),
                        writes: type_label(written),
                    });
                } else if read.required && !written.required {
                    problems.push(Incompatibility::Missing(read.name.clone()));
                }
            }
        }
    }
    problems
}

/// What breaks `mode` when `versions` (every version of one event, oldest first) gain their
/// last one: the new version against the one before it, or against all earlier ones when the
/// mode is transitive.
pub fn check_evolution(mode: Compatibility, versions: &[(u32, EventSchema)]) -> Vec<Break> {
    let Some(((new, newer), earlier)) = versions.split_last() else {
        return Vec::new();
    };
    let new = *new;
    let checked = if mode.transitive() {
        earlier
    } else {
        &earlier[earlier.len().saturating_sub(1)..]
    };
    let mut breaks = Vec::new();
    for (old, older) in checked.iter().rev() {
        let mut pair = |reader: (u32, &EventSchema), writer: (u32, &EventSchema)| {
            breaks.extend(
                read_problems(reader.1, writer.1)
                    .into_iter()
                    .map(|problem| Break {
                        reader: reader.0,
                        writer: writer.0,
                        problem,
                    }),
            );
        };
        if mode.new_readers_read_old_data() {
            pair((new, newer), (*old, older));
        }
        if mode.old_readers_read_new_data() {
            pair((*old, older), (new, newer));
        }
    }
    breaks
}

/// Whether readers of `read` accept what writers of `written` write: the same JSON type (an
/// integer is a number too), and null only where the readers accept it.
fn reads_type(read: &Property, written: &Property) -> bool {
    let same = read.json_type == written.json_type
        || (read.json_type == JsonType::Number && written.json_type == JsonType::Integer);
    same && (read.nullable || !written.nullable)
}

fn type_label(property: &Property) -> String {
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

    fn breaks(mode: Compatibility, versions: Vec<EventSchema>) -> Vec<String> {
        let versions: Vec<(u32, EventSchema)> = (1..).zip(versions).collect();
        check_evolution(mode, &versions)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const ID: &str = r#""id": {"type": "string"}"#;
    const QTY: &str = r#""qty": {"type": "integer"}"#;
    const QTY_TEXT: &str = r#""qty": {"type": "string"}"#;
    const NOTE: &str = r#""note": {"type": "string"}"#;
    const SITE: &str = r#""site": {"type": "string"}"#;

    #[test]
    fn each_mode_allows_what_schema_registry_allows() {
        use Compatibility::*;
        let v1 = || schema(&[ID, QTY].join(","), r#""id", "qty""#);
        let added_optional = schema(&[ID, QTY, NOTE].join(","), r#""id", "qty""#);
        let added_required = schema(&[ID, QTY, SITE].join(","), r#""id", "qty", "site""#);
        let removed_required = schema(ID, r#""id""#);
        let none = Vec::<String>::new();
        for mode in [Backward, Forward, Full] {
            assert_eq!(
                breaks(mode, vec![v1(), added_optional.clone()]),
                none,
                "{mode}"
            );
        }
        assert_eq!(breaks(Forward, vec![v1(), added_required.clone()]), none);
        assert_eq!(
            breaks(Backward, vec![v1(), added_required.clone()]),
            ["readers of version 2 require `site`, which version 1 may leave out"]
        );
        assert_eq!(breaks(Backward, vec![v1(), removed_required.clone()]), none);
        assert_eq!(
            breaks(Forward, vec![v1(), removed_required.clone()]),
            ["readers of version 1 require `qty`, which version 2 may leave out"]
        );
        assert_eq!(breaks(Full, vec![v1(), removed_required]).len(), 1);
        assert_eq!(breaks(Full, vec![v1(), added_required]).len(), 1);
    }

    #[test]
    fn transitive_modes_check_every_earlier_version() {
        // v2 drops `qty`; v3 brings it back as text: fine next to v2, not next to v1.
        let versions = || {
            vec![
                schema(&[ID, QTY].join(","), r#""id", "qty""#),
                schema(ID, r#""id""#),
                schema(&[ID, QTY_TEXT].join(","), r#""id""#),
            ]
        };
        assert_eq!(
            breaks(Compatibility::Backward, versions()),
            Vec::<String>::new()
        );
        assert_eq!(
            breaks(Compatibility::BackwardTransitive, versions()),
            ["readers of version 3 read `qty` as string, version 1 writes integer"]
        );
    }

    #[test]
    fn an_integer_is_read_as_a_number_and_null_only_where_accepted() {
        let integer = schema(r#""n": {"type": "integer"}"#, r#""n""#);
        let number = schema(r#""n": {"type": "number"}"#, r#""n""#);
        let nullable = schema(r#""n": {"type": ["number", "null"]}"#, r#""n""#);
        assert_eq!(read_problems(&number, &integer), []);
        assert_eq!(read_problems(&nullable, &number), []);
        assert_eq!(read_problems(&number, &nullable).len(), 1);
        assert_eq!(read_problems(&integer, &number).len(), 1);
    }
}
