//! Fuzzes `Envelope::decode` (into `Envelope<serde_json::Value>`) and `Envelope::decode_event`
//! (into the demo's `InventoryMovement`).
//!
//! Properties: decoding any bytes returns `Ok` or `Err` and never panics; and a decoded envelope
//! round-trips: `to_json` then decoding again gives the same envelope, with the timestamp cut to
//! the millisecond (the precision the envelope is written with), payload included digit for
//! digit (the workspace enables serde_json's `float_roundtrip`; `seeds/float_off_by_one_ulp.json`
//! is the input that drifted without it).
#![no_main]

use std::fmt::Debug;

use erp_demo::inventory::InventoryMovement;
use erp_events::{DecodeError, Envelope};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde_json::Value;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(envelope) = Envelope::<Value>::decode(bytes) {
        round_trip(envelope, Envelope::decode, PartialEq::eq);
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
