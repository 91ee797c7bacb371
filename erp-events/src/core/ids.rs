//! Identifiers created on the publish path: event ids (UUID v7) and trace/span ids.
//!
//! They come from a per-thread generator seeded once from the OS, so publishing does not make a
//! system call per id. The ids must be unique, not secret.

use std::cell::Cell;

use uuid::Uuid;

thread_local! {
    static STATE: Cell<u64> = Cell::new(u64::from_le_bytes(
        Uuid::new_v4().as_bytes()[..8].try_into().expect("8 bytes"),
    ));
}

/// A pseudo-random `u64` (SplitMix64 over the thread's state).
pub(crate) fn random_u64() -> u64 {
    STATE.with(|state| {
        let next = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// A UUID v7 for the current time: 48 bits of Unix milliseconds, then 74 random bits.
pub(crate) fn new_event_id(unix_millis: u64) -> Uuid {
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&random_u64().to_le_bytes());
    random[8..].copy_from_slice(&random_u64().to_le_bytes()[..2]);
    uuid::Builder::from_unix_timestamp_millis(unix_millis, &random).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_v7_ordered_by_time_and_distinct() {
        let earlier = new_event_id(1_770_814_800_000);
        let later = new_event_id(1_770_814_800_001);
        assert_eq!(earlier.get_version_num(), 7);
        assert!(earlier < later);
        let ids: std::collections::HashSet<Uuid> = (0..10_000)
            .map(|_| new_event_id(1_770_814_800_000))
            .collect();
        assert_eq!(ids.len(), 10_000);
    }
}
