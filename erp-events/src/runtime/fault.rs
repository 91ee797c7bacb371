//! Fault injection for tests (the `test-util` feature): a record that kills its partition
//! worker, as a bug outside a handler would, to test that no worker dies unnoticed.

use std::collections::HashSet;
use std::sync::Mutex;

/// A record whose value contains this (followed by any text up to a `"`, e.g. in a key field of
/// the envelope's payload) kills the first worker that reads it; each such text once per process.
pub const KILL_WORKER_MARKER: &str = "erp-events-test:kill-this-worker";

static KILLED: Mutex<Option<HashSet<Vec<u8>>>> = Mutex::new(None);

/// Panics (outside any handler) the first time `value` carries a given marked text.
pub(crate) fn kill_worker_on(value: Option<&[u8]>) {
    let marker = KILL_WORKER_MARKER.as_bytes();
    let Some(value) = value else { return };
    let Some(start) = value.windows(marker.len()).position(|w| w == marker) else {
        return;
    };
    let end = value[start..]
        .iter()
        .position(|byte| *byte == b'"')
        .map_or(value.len(), |length| start + length);
    let mut killed = KILLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if killed
        .get_or_insert_default()
        .insert(value[start..end].to_vec())
    {
        drop(killed);
        panic!("test-util: this partition worker dies");
    }
}
