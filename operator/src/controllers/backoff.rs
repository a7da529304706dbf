//! Exponential backoff of failed reconciles, per object: the one helper every controller's
//! error policy uses instead of a fixed retry interval.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The first retry after a failure.
pub const FIRST_RETRY: Duration = Duration::from_millis(500);
/// The longest wait between retries.
pub const MAX_RETRY: Duration = Duration::from_secs(300);

/// Consecutive failures per object key; a success resets the key.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

/// The wait before retrying after `failures` consecutive failures: [`FIRST_RETRY`], doubling,
/// at most [`MAX_RETRY`].
pub fn delay_after(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    FIRST_RETRY.saturating_mul(1u32 << exponent).min(MAX_RETRY)
}

impl Backoff {
    /// Records one more failure of `key` and returns how long to wait before retrying.
    pub fn failed(&self, key: &str) -> Duration {
        let Ok(mut map) = self.failures.lock() else { return MAX_RETRY };
        let n = map.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        delay_after(*n)
    }

    /// Forgets the failures of `key` (its reconcile succeeded).
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }
}

/// The backoff key of an object: `kind/namespace/name`.
pub fn key(kind: &str, namespace: Option<&str>, name: &str) -> String {
    format!("{kind}/{}/{name}", namespace.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_half_a_second_to_five_minutes_and_resets() {
        let backoff = Backoff::default();
        let waits: Vec<Duration> = (0..12).map(|_| backoff.failed("a")).collect();
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000, 300000]);
        assert_eq!(backoff.failed("b"), FIRST_RETRY, "keys are independent");
        backoff.succeeded("a");
        assert_eq!(backoff.failed("a"), FIRST_RETRY, "a success starts over");
        assert_eq!(delay_after(u32::MAX), MAX_RETRY);
    }
}
