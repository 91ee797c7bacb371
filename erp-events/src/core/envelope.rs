//! The standard event envelope: the JSON wire format shared with the Kotlin services.
//!
//! ```json
//! {"eventId":"0192…","eventType":"RECEIVED","source":"inventory-service",
//!  "timestamp":"2026-02-11T13:00:00.000Z","traceId":"4bf9…","userId":null,"version":1,
//!  "payload":{"productId":"SKU-1","quantity":5}}
//! ```
//!
//! Decoding never panics: any input either yields an envelope or a [`DecodeError`] naming what is
//! wrong, which becomes the dead-letter reason.

use std::sync::LazyLock;

use erp_events_catalog::Compatibility;
use memchr::memmem::Finder;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::core::context::EventContext;
use crate::core::event::Event;
use crate::core::ids::new_event_id;
use crate::core::trace::TraceContext;

/// An event with its metadata, exactly as it travels on Kafka.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    /// Unique id of this event (UUID v7 when we create it).
    pub event_id: Uuid,
    /// What happened, e.g. `INVENTORY_RECEIVED`.
    pub event_type: String,
    /// The service that published it.
    pub source: String,
    /// When it was published, in UTC.
    #[serde(with = "utc_timestamp")]
    pub timestamp: OffsetDateTime,
    /// The W3C trace id (32 hex digits) of the trace it was published in, if any.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// The user on whose behalf it was published, if any.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The payload's schema version, at least 1.
    pub version: u32,
    /// The event itself.
    pub payload: T,
}

/// Why bytes are not an envelope. The `Display` text is the dead-letter reason.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The record has no value or an empty one.
    #[error("the record value is empty")]
    Empty,
    /// The value is not UTF-8 text.
    #[error("the record value is not UTF-8 (invalid byte at {valid_up_to})")]
    NotUtf8 {
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// The value is not a JSON document.
    #[error("the record value is not JSON: {0}")]
    NotJson(serde_json::Error),
    /// The value is JSON but not an object.
    #[error("the envelope is not a JSON object")]
    NotAnObject,
    /// The value is a JSON object but not a readable envelope (e.g. a key given twice).
    #[error("the envelope is malformed: {0}")]
    Malformed(serde_json::Error),
    /// A required envelope key is absent.
    #[error("the envelope has no `{0}`")]
    MissingKey(&'static str),
    /// An envelope key holds a value of the wrong type or form.
    #[error("the envelope's `{key}` is invalid: expected {expected}")]
    InvalidKey {
        /// The key.
        key: &'static str,
        /// What it should hold.
        expected: &'static str,
    },
    /// `eventId` is a string but not a UUID.
    #[error("the envelope's `eventId` is not a UUID")]
    InvalidEventId,
    /// The envelope's `version` is newer than the consumer's, and the topic's compatibility
    /// mode does not promise that older consumers read newer versions.
    #[error(
        "schema version {found} is newer than this consumer's {supported}, and the topic's `{mode}` compatibility does not let older consumers read newer versions: upgrade consumers before producers (or make the topic `forward` or `full`)"
    )]
    UnsupportedVersion {
        /// The record's version.
        found: u32,
        /// The newest version the consumer was built for.
        supported: u32,
        /// The topic's compatibility mode.
        mode: Compatibility,
    },
    /// The payload does not match the event type.
    #[error("the payload does not match the event type: {0}")]
    InvalidPayload(serde_json::Error),
}

impl<T: Serialize> Envelope<T> {
    /// Writes the envelope as JSON.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

impl<T: DeserializeOwned> Envelope<T> {
    /// Reads an envelope from a record value; unknown envelope keys are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::Empty);
        }
        let text = std::str::from_utf8(bytes).map_err(|error| DecodeError::NotUtf8 {
            valid_up_to: error.valid_up_to(),
        })?;
        if !text.trim_start().starts_with('{') {
            // serde also reads structs from arrays; the wire format is an object only.
            return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => DecodeError::NotAnObject,
                Err(error) => DecodeError::NotJson(error),
            });
        }
        match serde_json::from_str::<Envelope<T>>(text) {
            Ok(envelope) if envelope.version == 0 => Err(invalid_version()),
            Ok(envelope) if envelope.event_type.is_empty() => Err(empty_event_type()),
            Ok(envelope) => Ok(envelope),
            // The typed pass failed: a slower pass finds which part is wrong.
            Err(error) => Err(diagnose::<T>(text, error)),
        }
    }
}

impl<P> Envelope<P> {
    /// An envelope published now by `source` in `trace`, for the context's user, with a new
    /// UUID v7 `eventId`.
    pub(crate) fn stamped(
        source: &str,
        (event_type, version): (&str, u32),
        payload: P,
        context: &EventContext,
        trace: &TraceContext,
    ) -> Self {
        let now = OffsetDateTime::now_utc();
        Envelope {
            event_id: new_event_id((now.unix_timestamp_nanos() / 1_000_000) as u64),
            event_type: event_type.to_owned(),
            source: source.to_owned(),
            timestamp: now,
            trace_id: Some(trace.trace_id_hex()),
            user_id: context.user_id().map(str::to_owned),
            version,
            payload,
        }
    }
}

impl<E: Event> Envelope<E> {
    /// A new envelope of `event` from `source`, stamped as [`crate::Publisher::send`] stamps it
    /// (new `eventId`, now, the current [`EventContext`]'s user and trace), for producers that
    /// keep the envelope to publish it later or again ([`crate::Publisher::publish_envelope`]).
    pub fn new(source: &str, event: E) -> Self {
        let context = EventContext::current();
        let trace = context
            .trace()
            .map_or_else(TraceContext::new_root, TraceContext::child);
        let kind = (event.event_type().to_owned(), E::VERSION);
        Self::stamped(source, (&kind.0, kind.1), event, &context, &trace)
    }

    /// [`Envelope::decode`], then checks that this build of `E` reads the record's version:
    /// every version up to `E::VERSION`, and newer ones where the topic's compatibility mode
    /// promises that older consumers read them (`forward`, `full`), ignoring the properties
    /// `E` does not know. The envelope keeps the record's `version`.
    pub fn decode_event(bytes: &[u8]) -> Result<Self, DecodeError> {
        let refused = |found: u32| {
            (found > E::VERSION && !E::COMPATIBILITY.old_readers_read_new_data()).then_some(
                DecodeError::UnsupportedVersion {
                    found,
                    supported: E::VERSION,
                    mode: E::COMPATIBILITY,
                },
            )
        };
        match Self::decode(bytes) {
            Ok(envelope) => match refused(envelope.version) {
                Some(error) => Err(error),
                None => Ok(envelope),
            },
            // A newer version's payload may not fit this build's struct: the mode is the reason.
            Err(DecodeError::InvalidPayload(error)) => Err(record_version(bytes)
                .and_then(refused)
                .unwrap_or(DecodeError::InvalidPayload(error))),
            Err(error) => Err(error),
        }
    }
}

/// The trace an envelope's bytes name, when a listener can continue it without the record's
/// headers: its `traceId` at the top level, written `"traceId":"` then 32 lowercase hex digits,
/// not all zero, then `"` (as erp-events and Jackson write it). A byte search, not a parse, so
/// that the Kafka consumer can leave a record's headers unread when its envelope carries the
/// trace (see `transport::kafka::record`). An envelope spelled otherwise (spaces, escapes, an
/// object or array before the key, a brace in an earlier string, a space before the first
/// brace) reads as naming none, which only costs reading its headers.
pub(crate) fn named_trace(value: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"traceId\":\"";
    // Built once: building a searcher costs more than a search.
    static FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(KEY));
    let at = FINDER.find(value)?;
    // At the top level: nothing opens between the envelope's `{` and the key (which cannot be
    // inside a string, where its quotes would be escaped).
    let (b'{', between) = value[..at].split_first()? else {
        return None;
    };
    if memchr::memchr2(b'{', b'[', between).is_some() {
        return None;
    }
    let rest = &value[at + KEY.len()..];
    let (Some(id), Some(b'"')) = (rest.get(..32), rest.get(32)) else {
        return None;
    };
    // Every digit checked, without a branch each: this runs for every record polled.
    let hex = id
        .iter()
        .fold(true, |hex, &digit| hex & LOWER_HEX[usize::from(digit)]);
    let id = std::str::from_utf8(id).ok()?;
    (hex && id != "00000000000000000000000000000000").then_some(id)
}

/// Which bytes are lowercase hex digits.
static LOWER_HEX: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = matches!(byte as u8, b'0'..=b'9' | b'a'..=b'f');
        byte += 1;
    }
    table
};

/// The `version` of an envelope that is otherwise well formed.
fn record_version(bytes: &[u8]) -> Option<u32> {
    let raw: RawEnvelope<'_> = serde_json::from_str(std::str::from_utf8(bytes).ok()?).ok()?;
    serde_json::from_str(raw.version?.get()).ok()
}

fn empty_event_type() -> DecodeError {
    DecodeError::InvalidKey {
        key: "eventType",
        expected: "a non-empty string",
    }
}

fn invalid_version() -> DecodeError {
    DecodeError::InvalidKey {
        key: "version",
        expected: "an integer of at least 1",
    }
}

/// Every envelope key as raw JSON, `null` included (a plain `Option` would read `null` as absent).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    event_id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    event_type: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    source: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    trace_id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    user_id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    version: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Finds the first wrong part of an envelope the typed pass rejected with `error`.
fn diagnose<T: DeserializeOwned>(text: &str, error: serde_json::Error) -> DecodeError {
    let raw: RawEnvelope<'_> = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(e) if e.is_data() => return DecodeError::Malformed(e),
        Err(e) => return DecodeError::NotJson(e),
    };
    let check = || -> Result<(), DecodeError> {
        let event_id: String = parse(required(raw.event_id, "eventId")?, "eventId", "a string")?;
        Uuid::try_parse(&event_id).map_err(|_| DecodeError::InvalidEventId)?;
        let event_type: String = parse(
            required(raw.event_type, "eventType")?,
            "eventType",
            "a string",
        )?;
        if event_type.is_empty() {
            return Err(empty_event_type());
        }
        parse::<String>(required(raw.source, "source")?, "source", "a string")?;
        let timestamp = required(raw.timestamp, "timestamp")?;
        utc_timestamp::deserialize(&mut serde_json::Deserializer::from_str(timestamp.get()))
            .map_err(|_| DecodeError::InvalidKey {
                key: "timestamp",
                expected: "an RFC 3339 date-time string of a year 0000 to 9999 in UTC",
            })?;
        for (value, key) in [(raw.trace_id, "traceId"), (raw.user_id, "userId")] {
            if let Some(value) = value {
                parse::<Option<String>>(value, key, "a string or null")?;
            }
        }
        let version: u32 = parse(required(raw.version, "version")?, "version", "an integer")?;
        if version == 0 {
            return Err(invalid_version());
        }
        let payload = required(raw.payload, "payload")?;
        serde_json::from_str::<T>(payload.get()).map_err(DecodeError::InvalidPayload)?;
        Ok(())
    };
    match check() {
        Err(diagnosis) => diagnosis,
        // Every part reads on its own (e.g. a duplicated key): report the typed pass's error.
        Ok(()) => DecodeError::Malformed(error),
    }
}

fn required<'a>(
    value: Option<&'a RawValue>,
    key: &'static str,
) -> Result<&'a RawValue, DecodeError> {
    value.ok_or(DecodeError::MissingKey(key))
}

fn parse<V: DeserializeOwned>(
    value: &RawValue,
    key: &'static str,
    expected: &'static str,
) -> Result<V, DecodeError> {
    serde_json::from_str(value.get()).map_err(|_| DecodeError::InvalidKey { key, expected })
}

/// RFC 3339 timestamps in UTC with millisecond precision and a `Z`, as Jackson writes `Instant`.
mod utc_timestamp {
    use super::*;

    pub fn serialize<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let at = at.to_offset(time::UtcOffset::UTC);
        s.collect_str(&format_args!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.millisecond()
        ))
    }

    /// Also rejects a time whose year in UTC is outside 0000 to 9999: `9999-12-31T23:00:00-05:00`
    /// is past the `time` crate's range in UTC, and `0000-01-01T00:00:00+01:00` (year -1 in UTC)
    /// would be written back as text that is not RFC 3339.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let at = OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)?;
        at.checked_to_offset(time::UtcOffset::UTC)
            .filter(|at| (0..=9999).contains(&at.year()))
            .ok_or_else(|| serde::de::Error::custom("the year in UTC is not 0000 to 9999"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Movement {
        product_id: String,
        quantity: i64,
    }

    /// The seed's envelope example, with a concrete payload.
    const SEED_EXAMPLE: &str = r#"{
      "eventId": "0192f1c4-7a3e-7b6c-9d2e-5f8a1b3c4d5e",
      "eventType": "INVENTORY_RECEIVED",
      "source": "inventory-service",
      "timestamp": "2026-02-11T13:00:00Z",
      "traceId": "otel-trace-id",
      "userId": "user-uuid",
      "version": 1,
      "payload": { "productId": "SKU-1", "quantity": 5 }
    }"#;

    fn sample() -> Envelope<Movement> {
        Envelope {
            event_id: Uuid::now_v7(),
            event_type: "INVENTORY_RECEIVED".into(),
            source: "inventory-service".into(),
            timestamp: OffsetDateTime::from_unix_timestamp_nanos(1_770_814_800_123_456_789)
                .unwrap(),
            trace_id: None,
            user_id: Some("u-7".into()),
            version: 1,
            payload: Movement {
                product_id: "SKU-1".into(),
                quantity: -3,
            },
        }
    }

    #[test]
    fn the_seed_example_decodes() {
        let envelope = Envelope::<Movement>::decode(SEED_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(envelope.event_type, "INVENTORY_RECEIVED");
        assert_eq!(envelope.trace_id.as_deref(), Some("otel-trace-id"));
        assert_eq!(envelope.timestamp.unix_timestamp(), 1_770_814_800);
        assert_eq!(envelope.payload.quantity, 5);
    }

    #[test]
    fn written_keys_are_exactly_the_seeds_in_camel_case() {
        let written: Value = serde_json::from_slice(&sample().to_json().unwrap()).unwrap();
        let seed: Value = serde_json::from_str(SEED_EXAMPLE).unwrap();
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&written), keys(&seed));
        assert_eq!(keys(&written["payload"]), ["productId", "quantity"]);
        assert_eq!(written["timestamp"], "2026-02-11T13:00:00.123Z");
        assert_eq!(written["traceId"], Value::Null);
        let id = Uuid::parse_str(written["eventId"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
    }

    #[test]
    fn a_round_trip_is_lossless_to_the_millisecond() {
        let mut envelope = sample();
        envelope.timestamp = envelope.timestamp.replace_nanosecond(123_000_000).unwrap();
        let bytes = envelope.to_json().unwrap();
        assert_eq!(Envelope::<Movement>::decode(&bytes).unwrap(), envelope);
    }

    #[test]
    fn unknown_keys_are_ignored_and_offsets_become_utc() {
        let mut value: Value = serde_json::from_str(SEED_EXAMPLE).unwrap();
        value["partitionHint"] = json!(3);
        value["timestamp"] = json!("2026-02-11T21:00:00+08:00");
        let envelope = Envelope::<Movement>::decode(value.to_string().as_bytes()).unwrap();
        assert_eq!(envelope.timestamp.unix_timestamp(), 1_770_814_800);
        assert!(envelope.timestamp.offset().is_utc());
    }

    /// The input `cargo fuzz run envelope_decode` found: without serde_json's
    /// `float_roundtrip`, the number read back changed its last digits on every round trip.
    #[test]
    fn numbers_survive_a_round_trip_digit_for_digit() {
        let record = SEED_EXAMPLE.replace(
            "\"quantity\": 5",
            "\"quantity\": 98888888888888888888888888888888888888888888888888888888888888885",
        );
        assert_ne!(record, SEED_EXAMPLE);
        let first = Envelope::<Value>::decode(record.as_bytes()).unwrap();
        let second = Envelope::<Value>::decode(&first.to_json().unwrap()).unwrap();
        assert_eq!(first.payload, second.payload);
        let third = Envelope::<Value>::decode(&second.to_json().unwrap()).unwrap();
        assert_eq!(second.to_json().unwrap(), third.to_json().unwrap());
    }

    fn decode_modified(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> DecodeError {
        let mut value: Value = serde_json::from_str(SEED_EXAMPLE).unwrap();
        change(value.as_object_mut().unwrap());
        Envelope::<Movement>::decode(value.to_string().as_bytes()).unwrap_err()
    }

    #[test]
    fn each_malformed_input_has_its_own_error() {
        let decode = |bytes: &[u8]| Envelope::<Movement>::decode(bytes).unwrap_err();
        assert!(matches!(decode(b""), DecodeError::Empty));
        assert!(matches!(
            decode(b"\xff\xfe{}"),
            DecodeError::NotUtf8 { valid_up_to: 0 }
        ));
        assert!(matches!(decode(b"{\"eventId\": "), DecodeError::NotJson(_)));
        assert!(matches!(decode(b"not json"), DecodeError::NotJson(_)));
        assert!(matches!(decode(b"[1, 2]"), DecodeError::NotAnObject));
        assert!(matches!(decode(b" 42"), DecodeError::NotAnObject));
        assert!(matches!(decode(b"[1, 2"), DecodeError::NotJson(_)));
        let twice = SEED_EXAMPLE.replacen("\"source\"", "\"source\": \"x\", \"source\"", 1);
        assert!(matches!(
            decode(twice.as_bytes()),
            DecodeError::Malformed(_)
        ));
        for key in [
            "eventId",
            "eventType",
            "source",
            "timestamp",
            "version",
            "payload",
        ] {
            let error = decode_modified(|e| {
                e.remove(key);
            });
            assert!(
                matches!(error, DecodeError::MissingKey(k) if k == key),
                "{key}: {error}"
            );
        }
        let error = decode_modified(|e| {
            e.insert("eventId".into(), json!("not-a-uuid\r\n*"));
        });
        assert!(matches!(error, DecodeError::InvalidEventId), "{error}");
        let cases = [
            ("version", json!("one"), "version"),
            ("version", json!(0), "version"),
            ("eventType", json!(7), "eventType"),
            ("eventType", json!(""), "eventType"),
            ("timestamp", json!("yesterday"), "timestamp"),
            ("userId", json!(42), "userId"),
            ("eventId", json!(12), "eventId"),
        ];
        for (key, value, expected_key) in cases {
            let error = decode_modified(|e| {
                e.insert(key.into(), value.clone());
            });
            assert!(
                matches!(error, DecodeError::InvalidKey { key, .. } if key == expected_key),
                "{key}={value}: {error}"
            );
        }
        let error = decode_modified(|e| {
            e["payload"]["quantity"] = json!("five");
        });
        assert!(matches!(error, DecodeError::InvalidPayload(_)), "{error}");
        let error = decode_modified(|e| {
            e.insert("payload".into(), Value::Null);
        });
        assert!(matches!(error, DecodeError::InvalidPayload(_)), "{error}");
    }

    #[test]
    fn null_trace_and_user_are_accepted() {
        let envelope = Envelope::<Movement>::decode(
            SEED_EXAMPLE
                .replace("\"otel-trace-id\"", "null")
                .replace("\"user-uuid\"", "null")
                .as_bytes(),
        )
        .unwrap();
        assert_eq!((envelope.trace_id, envelope.user_id), (None, None));
    }

    /// Reproduced with `fuzz/fuzz_targets/envelope_decode.rs`: converting to UTC panicked past 9999,
    /// and a year before 0000 in UTC was accepted but written back as `-001-…`, which is unreadable.
    #[test]
    fn timestamps_outside_years_0000_to_9999_in_utc_are_invalid() {
        for timestamp in ["9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00+00:01"] {
            let error = decode_modified(|e| {
                e.insert("timestamp".into(), json!(timestamp));
            });
            assert!(
                matches!(error, DecodeError::InvalidKey { key, .. } if key == "timestamp"),
                "{timestamp}: {error}"
            );
        }
        for (timestamp, utc) in [
            ("9999-12-31T23:59:59.999+00:00", "9999-12-31T23:59:59.999Z"),
            ("0000-01-01T01:00:00+01:00", "0000-01-01T00:00:00.000Z"),
        ] {
            let input = SEED_EXAMPLE.replace("2026-02-11T13:00:00Z", timestamp);
            let envelope = Envelope::<Movement>::decode(input.as_bytes()).unwrap();
            let bytes = envelope.to_json().unwrap();
            let written: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(written["timestamp"], utc);
            assert_eq!(Envelope::<Movement>::decode(&bytes).unwrap(), envelope);
        }
    }

    #[test]
    fn garbage_never_panics() {
        let deep = "[".repeat(100_000);
        let inputs: [&[u8]; 5] = [
            deep.as_bytes(),
            b"{\"payload\": 1e999999}",
            b"\x00\x00\x00",
            b"{\"eventId\": \"\\ud800\"}",
            &[b'{'; 1 << 20],
        ];
        for input in inputs {
            assert!(Envelope::<Movement>::decode(input).is_err());
        }
    }

    #[test]
    fn names_a_trace_exactly_when_a_listener_can_continue_the_envelopes_one() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let mut envelope = sample();
        envelope.trace_id = Some(id.into());
        let written = envelope.to_json().unwrap();
        assert_eq!(named_trace(&written), Some(id));
        for trace_id in [
            None,
            Some("otel-trace-id"),
            Some("4BF92F3577B34DA6A3CE929D0E0E4736"),
            Some("00000000000000000000000000000000"),
            Some("4bf92f3577b34da6a3ce929d0e0e473"),
            Some("4bf92f3577b34da6a3ce929d0e0e47361"),
        ] {
            envelope.trace_id = trace_id.map(str::to_owned);
            let written = envelope.to_json().unwrap();
            assert_eq!(named_trace(&written), None, "{trace_id:?}");
            // Whenever the bytes name none, neither does the decoded envelope (the listener
            // then reads the header).
            let decoded = Envelope::<Movement>::decode(&written).unwrap();
            let continued = decoded
                .trace_id
                .as_deref()
                .and_then(TraceContext::continuing);
            assert_eq!(continued, None, "{trace_id:?}");
        }
        // Only a top-level key counts; anything written otherwise reads as naming none.
        let nested = format!(r#"{{"payload":{{"traceId":"{id}"}},"traceId":null}}"#);
        let in_array = format!(r#"{{"tags":["x"],"traceId":"{id}"}}"#);
        let brace_in_a_string = format!(r#"{{"source":"svc{{1}}","traceId":"{id}"}}"#);
        let spaced = format!(r#"{{"traceId": "{id}"}}"#);
        let space_first = format!(r#" {{"traceId":"{id}"}}"#);
        for other in [nested, in_array, brace_in_a_string, spaced, space_first] {
            assert_eq!(named_trace(other.as_bytes()), None, "{other}");
        }
        let top_level = format!(r#"{{"source":"svc","traceId":"{id}"}}"#);
        assert_eq!(named_trace(top_level.as_bytes()), Some(id));
        assert_eq!(named_trace(br#"{"traceId":"4bf92f35"#), None);
        assert_eq!(
            named_trace(br#""traceId":"4bf92f3577b34da6a3ce929d0e0e4736""#),
            None
        );
        assert_eq!(named_trace(b""), None);
    }
}
