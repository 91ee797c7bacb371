//! Retry timing: exponential backoff, capped.

use std::time::Duration;

/// The delays between attempts: `initial`, then multiplied by `multiplier` each time, never more
/// than `max`. The default is Spring's `@Backoff(delay = 1000, multiplier = 2)` capped at 30 s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The delay before the first retry.
    pub initial: Duration,
    /// The factor between one delay and the next (at least 1).
    pub multiplier: f64,
    /// The longest delay.
    pub max: Duration,
}

impl Backoff {
    /// 1 s × 2, capped at 30 s.
    pub const DEFAULT: Backoff = Backoff {
        initial: Duration::from_secs(1),
        multiplier: 2.0,
        max: Duration::from_secs(30),
    };

    /// The delay before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(64) as i32;
        let factor = self.multiplier.max(1.0).powi(exponent);
        self.initial.mul_f64(factor.min(1e9)).min(self.max)
    }

    /// The total of the delays before `retries` retries.
    pub fn total(&self, retries: u32) -> Duration {
        (1..=retries).map(|retry| self.delay(retry)).sum()
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            multiplier: 3.0,
            max: Duration::from_secs(1),
        };
        let delays: Vec<u128> = (1..=5).map(|r| backoff.delay(r).as_millis()).collect();
        assert_eq!(delays, [100, 300, 900, 1000, 1000]);
        assert_eq!(backoff.total(3), Duration::from_millis(1300));
    }

    #[test]
    fn the_default_is_one_second_doubling() {
        let delays: Vec<u64> = (1..=3)
            .map(|r| Backoff::DEFAULT.delay(r).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4]);
        assert_eq!(Backoff::DEFAULT.delay(1000), Duration::from_secs(30));
    }
}
