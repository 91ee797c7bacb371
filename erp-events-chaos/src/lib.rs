//! The chaos test's event and the record its members write per handled step.
//!
//! A member (`chaos-member`) handles [`ChaosStep`]s in group `chaos-members` with the Redis
//! idempotency store. Each attempt appends `member|eventId|panics` (`1` for a step that panics) to `<run>:starts`; each handled
//! step appends a [`Handled`] line to `<run>:handled` in the same transaction as its `done`
//! marker ([`erp_events::RedisStore::apply_and_confirm`]), so that list holds each step exactly
//! once when nothing is lost or repeated.

use erp_events::erp_event;

/// The `seq`-th step of `key`.
#[erp_event(topic = "erp.chaos.steps", key = key)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaosStep {
    /// The key (so the partition).
    pub key: String,
    /// The step's number within its key, from 0.
    pub seq: i64,
    /// Whether the handler panics on its first attempt.
    pub panics: bool,
}

/// One handled step, as a member wrote it: `member|key|seq|start|end` (Unix nanoseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    /// The member process.
    pub member: String,
    /// The step's key.
    pub key: String,
    /// The step's number.
    pub seq: i64,
    /// When the handler started.
    pub start: u128,
    /// When it finished.
    pub end: u128,
}

impl Handled {
    /// The line written to Redis.
    pub fn line(&self) -> String {
        let Handled {
            member,
            key,
            seq,
            start,
            end,
        } = self;
        format!("{member}|{key}|{seq}|{start}|{end}")
    }

    /// Reads a line written by [`Handled::line`].
    pub fn parse(line: &str) -> Option<Self> {
        let mut parts = line.split('|');
        Some(Handled {
            member: parts.next()?.to_owned(),
            key: parts.next()?.to_owned(),
            seq: parts.next()?.parse().ok()?,
            start: parts.next()?.parse().ok()?,
            end: parts.next()?.parse().ok()?,
        })
    }
}

/// Now, in Unix nanoseconds (one clock for every process of the machine).
pub fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos()
}
