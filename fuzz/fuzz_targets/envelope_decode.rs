//! Fuzzes `Envelope::decode` (into `Envelope<serde_json::Value>`) and `Envelope::decode_event`
//! (into the demo's `InventoryMovement`).
//!
//! Properties: decoding any bytes returns `Ok` or `Err` and never panics; and a decoded envelope
//! round-trips: `to_json` then decoding again gives the same envelope, with the timestamp cut to
//! the millisecond (the precision the envelope is written with). A `Value` payload's floats may
//! move by one ULP: serde_json parses floats best-effort unless its `float_roundtrip` feature
//! is on, which erp-events does not enable.
#![no_main]

use std::fmt::Debug;

use erp_demo::inventory::InventoryMovement;
use erp_events::{DecodeError, Envelope};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde_json::Value;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(envelope) = Envelope::<Value>::decode(bytes) {
        round_trip(envelope, Envelope::decode, same_value);
    }
    if let Ok(envelope) = Envelope::<InventoryMovement>::decode_event(bytes) {
        round_trip(envelope, Envelope::decode_event, PartialEq::eq);
    }
});

/// Asserts that `decode(envelope.to_json())` gives back `envelope`, to the millisecond, with a
/// payload that is `same` as before.
fn round_trip<T: Serialize + Clone + PartialEq + Debug>(
    mut envelope: Envelope<T>,
    decode: fn(&[u8]) -> Result<Envelope<T>, DecodeError>,
    same: fn(&T, &T) -> bool,
) {
    let json = envelope.to_json().expect("a decoded envelope encodes");
    let again =
        decode(&json).unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&json)));
    assert!(
        same(&again.payload, &envelope.payload),
        "{again:?} != {envelope:?}"
    );
    envelope.payload = again.payload.clone();
    let nanos = envelope.timestamp.nanosecond();
    envelope.timestamp = envelope
        .timestamp
        .replace_nanosecond(nanos - nanos % 1_000_000)
        .expect("a valid nanosecond");
    assert_eq!(again, envelope);
}

/// `a == b`, except that two floats also match when they are neighbours (one ULP apart).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.to_bits().abs_diff(y.to_bits()) <= 1
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}
