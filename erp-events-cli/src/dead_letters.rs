//! Reading a dead-letter topic: each record with what its `kafka_dlt-*` headers say (written by
//! erp-events or by Spring's `DeadLetterPublishingRecoverer`), the filters, `dlt list` and
//! `dlt show`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use erp_events::dlt::{DeadLetterHeaderError, DeadLetterInfo, decode_dead_letter_headers};
use erp_events::{Catalog, Kafka};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::args::Selection;
use crate::cluster::{TIMEOUT, partitions, reader};
use crate::failure::{Failure, Verdict};
use crate::output::{cut, or_dash, print, table};

/// One record of a dead-letter topic.
pub struct DeadLetter {
    /// Its partition on the dead-letter topic.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// When it was dead-lettered (epoch milliseconds).
    pub timestamp: Option<i64>,
    /// The original record's key.
    pub key: Option<Vec<u8>>,
    /// The original record's value.
    pub value: Option<Vec<u8>>,
    /// Every header, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// What the dead-letter headers say, or why they cannot be read.
    pub info: Result<DeadLetterInfo, DeadLetterHeaderError>,
    /// The envelope's `eventType`, when the value is an envelope.
    pub event_type: Option<String>,
    /// The envelope's `eventId`, when the value is an envelope.
    pub event_id: Option<String>,
}

impl DeadLetter {
    fn read(message: &rdkafka::message::BorrowedMessage<'_>) -> Self {
        let headers: Vec<(String, Option<Vec<u8>>)> = erp_events::record_headers(message)
            .into_iter()
            .map(|(name, value)| (name.into_owned(), value.map(<[u8]>::to_vec)))
            .collect();
        let info = decode_dead_letter_headers(
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_deref())),
        );
        let envelope: Option<Value> = message
            .payload()
            .and_then(|value| serde_json::from_slice(value).ok());
        let field = |name: &str| {
            envelope
                .as_ref()
                .and_then(|envelope| envelope.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        DeadLetter {
            partition: message.partition(),
            offset: message.offset(),
            timestamp: message.timestamp().to_millis(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            event_type: field("eventType"),
            event_id: field("eventId"),
            headers,
            info,
        }
    }

    /// The key as text (invalid UTF-8 replaced).
    pub fn key_text(&self) -> Option<String> {
        self.key
            .as_deref()
            .map(|key| String::from_utf8_lossy(key).into_owned())
    }

    /// The dead letter as JSON: where it is, what it carries and why it is here.
    pub fn summary(&self) -> Value {
        let info = self.info.as_ref().ok();
        json!({
            "partition": self.partition,
            "offset": self.offset,
            "deadLetteredAt": self.timestamp.map(rfc3339),
            "key": self.key_text(),
            "eventType": self.event_type,
            "eventId": self.event_id,
            "originalTopic": info.map(|i| &i.original_topic),
            "originalPartition": info.map(|i| i.original_partition),
            "originalOffset": info.map(|i| i.original_offset),
            "originalTimestamp": info.and_then(|i| i.original_timestamp).map(rfc3339),
            "consumerGroup": info.map(|i| &i.consumer_group),
            "errorType": info.map(|i| &i.error_type),
            "causeType": info.and_then(|i| i.cause_type.as_ref()),
            "reason": info.map(|i| &i.message),
            "attempts": info.and_then(|i| i.attempts),
            "originalHeadersLost": info.and_then(|i| i.original_headers_lost.as_ref()),
            "headerError": self.info.as_ref().err().map(ToString::to_string),
        })
    }

    /// A table row: position, time, key, event type, group, attempts, error type, reason.
    pub fn row(&self) -> Vec<String> {
        let info = self.info.as_ref().ok();
        vec![
            format!("{}:{}", self.partition, self.offset),
            or_dash(self.timestamp.map(rfc3339)),
            or_dash(self.key_text()),
            or_dash(self.event_type.as_ref()),
            or_dash(info.map(|i| &i.consumer_group)),
            or_dash(info.and_then(|i| i.attempts)),
            or_dash(info.map(|i| short_type(&i.error_type))),
            match &self.info {
                Ok(info) => cut(&info.message, 60),
                Err(error) => error.to_string(),
            },
        ]
    }
}

/// The header of [`DeadLetter::row`]'s table.
pub const ROW_HEADER: [&str; 8] = [
    "POSITION",
    "DEAD-LETTERED",
    "KEY",
    "EVENT-TYPE",
    "GROUP",
    "ATTEMPTS",
    "ERROR",
    "REASON",
];

/// `a.b.C` → `C`, `a::b::C` → `C`.
fn short_type(path: &str) -> &str {
    path.rsplit(['.', ':']).next().unwrap_or(path)
}

/// Epoch milliseconds as RFC 3339.
pub fn rfc3339(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_else(|| millis.to_string())
}

/// The dead-letter topic `name` means: a catalog topic's, or one itself.
pub fn dead_letter_topic(catalog: &Catalog, name: &str) -> Result<String, Failure> {
    if let Some(topic) = catalog.topic(name) {
        return Ok(topic.dead_letter_topic());
    }
    if catalog
        .topics()
        .iter()
        .any(|topic| topic.dead_letter_topic() == name)
    {
        return Ok(name.to_owned());
    }
    let known: Vec<&str> = catalog.topics().iter().map(|t| t.name.as_str()).collect();
    Err(Failure::usage(format!(
        "`{name}` is neither a catalog topic nor a dead-letter topic of one; the catalog's topics: {}",
        known.join(", ")
    )))
}

/// Which dead letters a [`Selection`] keeps.
pub struct Filter {
    since: Option<i64>,
    until: Option<i64>,
    selection: Selection,
}

impl Filter {
    /// The filter of `selection`, its times read against `now`.
    pub fn new(selection: &Selection, now: OffsetDateTime) -> Result<Self, Failure> {
        let time = |text: &Option<String>, option: &str| {
            text.as_deref()
                .map(|text| point_in_time(text, now))
                .transpose()
                .map_err(|error| Failure::usage(format!("--{option} {error}")))
        };
        Ok(Filter {
            since: time(&selection.since, "since")?,
            until: time(&selection.until, "until")?,
            selection: selection.clone(),
        })
    }

    /// Whether `dead` is selected.
    pub fn keeps(&self, dead: &DeadLetter) -> bool {
        let selection = &self.selection;
        let at = dead.timestamp.unwrap_or(i64::MIN);
        let info = dead.info.as_ref().ok();
        self.since.is_none_or(|since| at >= since)
            && self.until.is_none_or(|until| at < until)
            && selection
                .key
                .as_ref()
                .is_none_or(|key| dead.key.as_deref() == Some(key.as_bytes()))
            && selection
                .event_type
                .as_ref()
                .is_none_or(|wanted| dead.event_type.as_ref() == Some(wanted))
            && selection
                .group
                .as_ref()
                .is_none_or(|group| info.is_some_and(|info| &info.consumer_group == group))
            && selection.reason.as_ref().is_none_or(|reason| {
                info.is_some_and(|info| {
                    info.message.contains(reason.as_str())
                        || info.error_type.contains(reason.as_str())
                })
            })
    }
}

/// RFC 3339, or an age before `now` (`45s`, `30m`, `2h`, `7d`), as epoch milliseconds.
fn point_in_time(text: &str, now: OffsetDateTime) -> Result<i64, String> {
    let millis = |time: OffsetDateTime| (time.unix_timestamp_nanos() / 1_000_000) as i64;
    if let Ok(time) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(millis(time));
    }
    let unit = text.chars().last().unwrap_or(' ');
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => 0,
    };
    match text[..text.len() - unit.len_utf8().min(text.len())].parse::<u32>() {
        Ok(count) if seconds > 0 => Ok(millis(
            now - time::Duration::seconds(i64::from(count) * seconds),
        )),
        _ => Err(format!(
            "`{text}` is neither an RFC 3339 time (2026-12-01T08:00:00Z) nor an age (45s, 30m, 2h, 7d)"
        )),
    }
}

/// What a scan should do after a record.
pub enum Flow {
    /// Read on.
    Continue,
    /// Stop here.
    Stop,
}

/// Reads `topic` from `from` (per partition; else its start) up to its end as it is when the
/// scan begins, handing each record to `each`. Returns, per partition, the offset after the
/// last record read (the end for partitions read through).
pub fn scan(
    kafka: &Kafka,
    topic: &str,
    from: &BTreeMap<i32, i64>,
    mut each: impl FnMut(DeadLetter) -> Result<Flow, Failure>,
) -> Result<BTreeMap<i32, i64>, Failure> {
    let reader = reader(kafka, None)?;
    let consumer = &reader;
    let Some(ids) = partitions(consumer, topic)? else {
        return Err(Failure::usage(format!(
            "the cluster has no topic `{topic}` (create it: erp-events topics provision)"
        )));
    };
    let mut ends = BTreeMap::new();
    let mut read_to = BTreeMap::new();
    let mut list = TopicPartitionList::new();
    for partition in ids {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, TIMEOUT)
            .map_err(|error| {
                Failure::cluster("cannot read the dead-letter topic's offsets", error)
            })?;
        let start = from.get(&partition).copied().unwrap_or(low).max(low);
        read_to.insert(partition, start);
        if start < high {
            ends.insert(partition, high);
            list.add_partition_offset(topic, partition, Offset::Offset(start))
                .map_err(|error| Failure::cluster("cannot assign the dead-letter topic", error))?;
        }
    }
    consumer
        .assign(&list)
        .map_err(|error| Failure::cluster("cannot assign the dead-letter topic", error))?;
    let mut quiet_since = Instant::now();
    while !ends.is_empty() {
        let Some(result) = consumer.poll(Duration::from_millis(200)) else {
            if quiet_since.elapsed() > TIMEOUT {
                return Err(Failure::cluster(
                    "reading the dead-letter topic",
                    format!("no record for {} s before its end", TIMEOUT.as_secs()),
                ));
            }
            continue;
        };
        quiet_since = Instant::now();
        let message = match result {
            Ok(message) => message,
            Err(KafkaError::PartitionEOF(partition)) => {
                if let Some(end) = ends.remove(&partition) {
                    read_to.insert(partition, end);
                }
                continue;
            }
            Err(KafkaError::MessageConsumption(RDKafkaErrorCode::PartitionEOF)) => continue,
            Err(error) => return Err(Failure::cluster("reading the dead-letter topic", error)),
        };
        let (partition, offset) = (message.partition(), message.offset());
        let Some(&end) = ends.get(&partition) else {
            continue;
        };
        if offset >= end {
            ends.remove(&partition);
            read_to.insert(partition, end);
            continue;
        }
        let flow = each(DeadLetter::read(&message))?;
        read_to.insert(partition, offset + 1);
        if offset + 1 >= end {
            ends.remove(&partition);
        }
        if let Flow::Stop = flow {
            break;
        }
    }
    Ok(read_to)
}

/// `dlt list`: every selected dead letter.
pub fn list(kafka: &Kafka, topic: &str, filter: &Filter, json: bool) -> Result<Verdict, Failure> {
    let mut selected = Vec::new();
    scan(kafka, topic, &BTreeMap::new(), |dead| {
        if filter.keeps(&dead) {
            selected.push(dead);
        }
        Ok(Flow::Continue)
    })?;
    let value = Value::Array(selected.iter().map(DeadLetter::summary).collect());
    print(json, &value, || {
        let rows: Vec<Vec<String>> = selected.iter().map(DeadLetter::row).collect();
        format!(
            "{}\n{} dead letter(s) in {topic}",
            table(&ROW_HEADER, &rows),
            selected.len()
        )
    });
    Ok(Verdict::Clean)
}

/// `dlt show`: one dead letter with every header and its value.
pub fn show(
    kafka: &Kafka,
    topic: &str,
    partition: Option<i32>,
    offset: i64,
    json: bool,
) -> Result<Verdict, Failure> {
    let Some(ids) = partitions(&reader(kafka, None)?, topic)? else {
        return Err(Failure::usage(format!(
            "the cluster has no topic `{topic}`"
        )));
    };
    let partition = match partition {
        Some(partition) if ids.contains(&partition) => partition,
        Some(partition) => {
            return Err(Failure::usage(format!(
                "{topic} has no partition {partition} (it has {})",
                ids.len()
            )));
        }
        None if ids.len() == 1 => ids[0],
        None => {
            return Err(Failure::usage(format!(
                "{topic} has {} partitions: say which with --partition",
                ids.len()
            )));
        }
    };
    let mut found = None;
    scan(
        kafka,
        topic,
        &BTreeMap::from([(partition, offset)]),
        |dead| {
            if dead.partition == partition {
                found = (dead.offset == offset).then_some(dead);
                return Ok(Flow::Stop);
            }
            Ok(Flow::Continue)
        },
    )?;
    let Some(dead) = found else {
        return Err(Failure::usage(format!(
            "{topic} has no record at partition {partition}, offset {offset}"
        )));
    };
    let mut value = dead.summary();
    value["headers"] = Value::Array(
        dead.headers
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value.as_deref().map(header_text)}))
            .collect(),
    );
    value["value"] = match dead.value.as_deref() {
        None => Value::Null,
        Some(bytes) => serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
    };
    print(json, &value, || {
        let mut lines: Vec<String> = Vec::new();
        if let Value::Object(fields) = dead.summary() {
            for (name, field) in fields {
                if !field.is_null() {
                    lines.push(format!("{name}: {}", plain(&field)));
                }
            }
        }
        lines.push("headers:".to_owned());
        for (name, header) in &dead.headers {
            lines.push(format!(
                "  {name}: {}",
                header.as_deref().map_or("(null)".to_owned(), header_text)
            ));
        }
        lines.push("value:".to_owned());
        lines.push(serde_json::to_string_pretty(&value["value"]).expect("JSON prints"));
        lines.join("\n")
    });
    Ok(Verdict::Clean)
}

/// A header value as text: UTF-8 when it is, else Spring's big-endian numbers, else hex.
fn header_text(bytes: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(bytes)
        && !text.chars().any(char::is_control)
    {
        return text.to_owned();
    }
    match bytes.len() {
        4 => i32::from_be_bytes(bytes.try_into().expect("4 bytes")).to_string(),
        8 => i64::from_be_bytes(bytes.try_into().expect("8 bytes")).to_string(),
        _ => bytes.iter().map(|byte| format!("{byte:02x}")).collect(),
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_ages() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        assert_eq!(point_in_time("2h", now), Ok(1_000_000_000 - 7_200_000));
        assert_eq!(point_in_time("7d", now), Ok(1_000_000_000 - 604_800_000));
        assert_eq!(point_in_time("1970-01-01T00:00:01Z", now), Ok(1000));
        let error = point_in_time("yesterday", now).unwrap_err();
        assert!(error.contains("`yesterday` is neither"), "{error}");
        assert!(point_in_time("h", now).is_err());
    }

    #[test]
    fn header_values_read_as_text_or_springs_numbers() {
        assert_eq!(header_text(b"search-sync"), "search-sync");
        assert_eq!(header_text(&7i32.to_be_bytes()), "7");
        assert_eq!(header_text(&42i64.to_be_bytes()), "42");
        assert_eq!(header_text(&[0xff, 0x00, 0x01]), "ff0001");
    }

    #[test]
    fn error_types_are_shortened_in_tables() {
        assert_eq!(
            short_type("java.lang.IllegalStateException"),
            "IllegalStateException"
        );
        assert_eq!(short_type("erp_events::DecodeError"), "DecodeError");
    }
}
