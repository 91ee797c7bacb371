//! The topic table of `catalog.toml`: the seed's topic table, as data.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::compat::Compatibility;
use crate::naming::topic_shape_error;
use crate::schema::{EventSchema, SchemaError, schema_file_name};

/// Name of the topic table inside a catalog directory.
pub const CATALOG_FILE: &str = "catalog.toml";

/// The dead-letter suffix when the catalog names none: the seed's, and Spring's
/// `DeadLetterPublishingRecoverer` default up to 3.2 (Spring 3.3 and later write `-dlt`).
pub const DEFAULT_DEAD_LETTER_SUFFIX: &str = ".DLT";

/// One row of the topic table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// The Kafka topic, `erp.<module>.<category>`.
    pub name: String,
    /// The service that publishes on the topic (`source` of its envelopes).
    pub producer: String,
    /// The consumer groups allowed to listen to the topic.
    pub consumers: Vec<String>,
    /// Partition count; the topic's dead-letter twin gets at least as many.
    pub partitions: i32,
    /// What the topic carries, for people.
    pub purpose: String,
    /// Whether records are never compacted or deleted by their producer (the audit trail).
    #[serde(default)]
    pub append_only: bool,
    /// What the dead-letter topic's name adds to this topic's (`.DLT` or `-dlt`); when the row
    /// names none, the catalog's `dead_letter_suffix`, else [`DEFAULT_DEAD_LETTER_SUFFIX`].
    #[serde(default)]
    pub dead_letter_suffix: String,
    /// How the topic's event schemas may evolve; when the row names none, the catalog's
    /// `compatibility`, else [`Compatibility::Backward`].
    #[serde(default)]
    pub compatibility: Option<Compatibility>,
}

impl Topic {
    /// How the topic's schemas may evolve (its own mode, else the catalog's).
    pub fn compatibility(&self) -> Compatibility {
        self.compatibility.unwrap_or_default()
    }

    /// The topic's dead letters go to: its name and its dead-letter suffix.
    pub fn dead_letter_topic(&self) -> String {
        format!("{}{}", self.name, self.dead_letter_suffix)
    }
}

/// The catalog: the topic table and the directory its schemas live in.
#[derive(Debug, Clone)]
pub struct Catalog {
    dir: PathBuf,
    topics: Vec<Topic>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    /// The dead-letter suffix of every topic whose row names none.
    dead_letter_suffix: Option<String>,
    /// The compatibility mode of every topic whose row names none.
    compatibility: Option<Compatibility>,
    #[serde(rename = "topic")]
    topics: Vec<Topic>,
}

/// Why a catalog or one of its schemas could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A file of the catalog could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `catalog.toml` is not valid TOML of the expected shape.
    #[error("`{path}` is not a valid topic catalog: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML reader said.
        message: String,
    },
    /// A row of the topic table breaks a rule (topic shape, partitions, duplicates).
    #[error("`{path}`: topic `{topic}`: {message}")]
    InvalidTopic {
        /// The file.
        path: PathBuf,
        /// The offending topic.
        topic: String,
        /// The rule it breaks.
        message: String,
    },
    /// A schema file exists but is not a schema this catalog understands.
    #[error("`{path}`: {source}")]
    Schema {
        /// The schema file.
        path: PathBuf,
        /// What is wrong with it.
        source: SchemaError,
    },
}

impl Catalog {
    /// Reads `catalog.toml` from `dir` and checks every row.
    pub fn load(dir: &Path) -> Result<Self, CatalogError> {
        let path = dir.join(CATALOG_FILE);
        let text = read(&path)?;
        Self::parse(dir, &text)
    }

    /// Parses the text of a `catalog.toml` whose schemas live in `dir` (which is not read).
    pub fn parse(dir: &Path, text: &str) -> Result<Self, CatalogError> {
        let path = dir.join(CATALOG_FILE);
        let file: CatalogFile = toml::from_str(text).map_err(|error| CatalogError::Parse {
            path: path.clone(),
            message: error.message().to_owned(),
        })?;
        let suffix = file
            .dead_letter_suffix
            .unwrap_or_else(|| DEFAULT_DEAD_LETTER_SUFFIX.to_owned());
        let mut topics = file.topics;
        for topic in topics.iter_mut().filter(|t| t.compatibility.is_none()) {
            topic.compatibility = Some(file.compatibility.unwrap_or_default());
        }
        for topic in topics
            .iter_mut()
            .filter(|t| t.dead_letter_suffix.is_empty())
        {
            topic.dead_letter_suffix.clone_from(&suffix);
        }
        let catalog = Catalog {
            dir: dir.to_owned(),
            topics,
        };
        catalog.validate(&path)?;
        Ok(catalog)
    }

    fn validate(&self, path: &Path) -> Result<(), CatalogError> {
        for (index, topic) in self.topics.iter().enumerate() {
            let invalid = |message: String| CatalogError::InvalidTopic {
                path: path.to_owned(),
                topic: topic.name.clone(),
                message,
            };
            if let Some(message) = topic_shape_error(&topic.name) {
                return Err(invalid(message));
            }
            if topic.partitions < 1 {
                return Err(invalid("`partitions` must be at least 1".into()));
            }
            if let Some(message) = dead_letter_suffix_error(&topic.dead_letter_suffix) {
                return Err(invalid(message));
            }
            if self.topics[..index].iter().any(|t| t.name == topic.name) {
                return Err(invalid("declared twice".into()));
            }
            if let Some(group) = topic
                .consumers
                .iter()
                .enumerate()
                .find_map(|(i, g)| topic.consumers[..i].contains(g).then_some(g))
            {
                return Err(invalid(format!("consumer group `{group}` listed twice")));
            }
        }
        Ok(())
    }

    /// The directory holding `catalog.toml` and the schema folders.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every topic, in catalog order.
    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }

    /// Every consumer group some topic declares, sorted, once each.
    pub fn consumer_groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = self
            .topics
            .iter()
            .flat_map(|topic| topic.consumers.iter().map(String::as_str))
            .collect();
        groups.sort_unstable();
        groups.dedup();
        groups
    }

    /// The topic named `name`, if declared.
    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.iter().find(|topic| topic.name == name)
    }

    /// Where `topic`'s dead letters go: the dead-letter topic of its row, or `topic` with
    /// [`DEFAULT_DEAD_LETTER_SUFFIX`] when the catalog does not declare it.
    pub fn dead_letter_topic(&self, topic: &str) -> String {
        match self.topic(topic) {
            Some(declared) => declared.dead_letter_topic(),
            None => format!("{topic}{DEFAULT_DEAD_LETTER_SUFFIX}"),
        }
    }

    /// Where the schema of version `version` of `schema_name` on `topic` lives (it may not exist).
    pub fn schema_path(&self, topic: &str, schema_name: &str, version: u32) -> PathBuf {
        self.dir
            .join(topic)
            .join(schema_file_name(schema_name, version))
    }

    /// Reads a schema; `Ok(None)` when its file does not exist.
    pub fn load_schema(
        &self,
        topic: &str,
        schema_name: &str,
        version: u32,
    ) -> Result<Option<EventSchema>, CatalogError> {
        let path = self.schema_path(topic, schema_name, version);
        if !path.is_file() {
            return Ok(None);
        }
        let text = read(&path)?;
        EventSchema::parse(&text)
            .map(Some)
            .map_err(|source| CatalogError::Schema { path, source })
    }

    /// Every schema file of the catalog as `(topic, schema name, version, path)`, sorted.
    pub fn schema_files(&self) -> Result<Vec<(String, String, u32, PathBuf)>, CatalogError> {
        let mut files = Vec::new();
        for topic in &self.topics {
            for (name, version, path) in self.topic_schema_files(&topic.name)? {
                files.push((topic.name.clone(), name, version, path));
            }
        }
        files.sort();
        Ok(files)
    }

    /// The event schema names that have files under `topic`, sorted: one, when the topic is
    /// used as intended (one event struct per topic).
    pub fn event_names(&self, topic: &str) -> Result<Vec<String>, CatalogError> {
        let mut names: Vec<String> = self
            .topic_schema_files(topic)?
            .into_iter()
            .map(|(name, _, _)| name)
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The schema files under `topic` as `(schema name, version, path)`, unsorted.
    fn topic_schema_files(&self, topic: &str) -> Result<Vec<(String, u32, PathBuf)>, CatalogError> {
        let folder = self.dir.join(topic);
        let Ok(entries) = std::fs::read_dir(&folder) else {
            return Ok(Vec::new());
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| CatalogError::Read {
                    path: folder.clone(),
                    source,
                })?
                .path();
            let parsed = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(crate::schema::parse_schema_file_name);
            if let Some((name, version)) = parsed {
                files.push((name, version, path));
            }
        }
        Ok(files)
    }
}

/// Why `suffix` cannot end a dead-letter topic's name, if it cannot: Kafka allows ASCII letters,
/// digits, `.`, `_` and `-` in topic names.
fn dead_letter_suffix_error(suffix: &str) -> Option<String> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    (suffix.is_empty() || !suffix.chars().all(legal)).then(|| {
        format!(
            "`dead_letter_suffix` `{suffix}` must be non-empty ASCII letters, digits, `.`, `_` or `-` (e.g. `.DLT` or `-dlt`)"
        )
    })
}

fn read(path: &Path) -> Result<String, CatalogError> {
    std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_TOPICS: &str = r#"
        [[topic]]
        name = "erp.inventory.movements"
        producer = "inventory-service"
        consumers = ["search-sync", "analytics"]
        partitions = 6
        purpose = "stock movements"

        [[topic]]
        name = "erp.audit.events"
        producer = "*"
        consumers = ["audit", "compliance"]
        partitions = 3
        purpose = "audit trail"
        append_only = true
    "#;

    fn parse(text: &str) -> Result<Catalog, CatalogError> {
        Catalog::parse(Path::new("schemas"), text)
    }

    #[test]
    fn reads_the_topic_table() {
        let catalog = parse(TWO_TOPICS).unwrap();
        assert_eq!(catalog.topics().len(), 2);
        let audit = catalog.topic("erp.audit.events").unwrap();
        assert!(audit.append_only);
        assert_eq!(audit.consumers, ["audit", "compliance"]);
        assert!(
            !catalog
                .topic("erp.inventory.movements")
                .unwrap()
                .append_only
        );
        assert!(catalog.topic("erp.sales.transactions").is_none());
    }

    #[test]
    fn rejects_invalid_rows() {
        let cases = [
            (
                TWO_TOPICS.replace("erp.audit.events", "erp.Audit.events"),
                "lowercase",
            ),
            (
                TWO_TOPICS.replace("partitions = 3", "partitions = 0"),
                "at least 1",
            ),
            (
                TWO_TOPICS.replace("erp.audit.events", "erp.inventory.movements"),
                "declared twice",
            ),
            (
                TWO_TOPICS.replace("\"compliance\"", "\"audit\""),
                "listed twice",
            ),
            (
                TWO_TOPICS.replace("purpose = \"audit trail\"", "purpose = 1"),
                "invalid type",
            ),
            (
                TWO_TOPICS.replace("append_only", "appendOnly"),
                "unknown field",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(&text).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error} should mention {expected}"
            );
        }
    }

    #[test]
    fn dead_letter_topics_follow_the_catalog_then_the_row() {
        let catalog = parse(TWO_TOPICS).unwrap();
        assert_eq!(
            catalog.dead_letter_topic("erp.audit.events"),
            "erp.audit.events.DLT"
        );
        let text = format!("dead_letter_suffix = \"-dlt\"\n{TWO_TOPICS}").replace(
            "append_only = true",
            "append_only = true\ndead_letter_suffix = \".DLT\"",
        );
        let catalog = parse(&text).unwrap();
        assert_eq!(
            catalog.dead_letter_topic("erp.inventory.movements"),
            "erp.inventory.movements-dlt"
        );
        assert_eq!(
            catalog.dead_letter_topic("erp.audit.events"),
            "erp.audit.events.DLT"
        );
        assert_eq!(
            catalog.dead_letter_topic("erp.other.topic"),
            "erp.other.topic.DLT"
        );
        let error = parse(&format!("dead_letter_suffix = \"/dlt\"\n{TWO_TOPICS}"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("`dead_letter_suffix` `/dlt`"), "{error}");
    }

    #[test]
    fn schema_paths_follow_the_naming_rule() {
        let catalog = parse(TWO_TOPICS).unwrap();
        assert_eq!(
            catalog.schema_path("erp.audit.events", "AUDIT_RECORDED", 2),
            Path::new("schemas/erp.audit.events/AUDIT_RECORDED.v2.json")
        );
    }
}
