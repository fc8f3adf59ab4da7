//! The retry policy: what to do after a failed attempt. Pure and unit-tested; the lane waits.

use std::time::Duration;

use crate::config::DeliveryConfig;

/// Limits on retrying one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First delay; doubles per attempt.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// Age before giving up.
    pub max_age: Duration,
}

/// The decision after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Try again after this long.
    RetryIn(Duration),
    /// Send to the dead letters, for this reason.
    GiveUp(String),
}

/// How long to wait after a 429 that named no delay.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);

impl RetryPolicy {
    /// The policy of `[delivery]`.
    pub fn from_config(c: &DeliveryConfig) -> Self {
        Self { base: c.backoff_base, cap: c.backoff_cap, max_attempts: c.max_attempts, max_age: c.max_age }
    }

    /// After failed attempt number `attempts` (1 for the first) of a post accepted `age` ago; `hint`
    /// is a delay the platform asked for. `jitter(max)` returns a number in `0..=max`.
    pub fn after_failure(
        &self,
        attempts: u32,
        age: Duration,
        hint: Option<Duration>,
        jitter: impl FnOnce(u64) -> u64,
    ) -> Next {
        if attempts >= self.max_attempts {
            return Next::GiveUp(format!("gave up after {attempts} attempts (delivery.max_attempts)"));
        }
        if age >= self.max_age {
            return Next::GiveUp(format!(
                "gave up after {} (delivery.max_age)",
                humantime::format_duration(self.max_age)
            ));
        }
        let exp = self.base.saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(31)));
        let ceiling = exp.min(self.cap).as_millis() as u64;
        let delay = Duration::from_millis(jitter(ceiling));
        Next::RetryIn(delay.max(hint.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            max_attempts: 20,
            max_age: Duration::from_secs(86_400),
        }
    }

    #[test]
    fn delays_double_up_to_the_cap_with_full_jitter() {
        let top = |attempts| match policy().after_failure(attempts, Duration::ZERO, None, |max| max) {
            Next::RetryIn(d) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!([top(1), top(2), top(3), top(9)], [1, 2, 4, 256].map(Duration::from_secs));
        assert_eq!(top(10), Duration::from_secs(300), "capped");
        assert_eq!(top(19), Duration::from_secs(300));
        let low = policy().after_failure(5, Duration::ZERO, None, |_| 0);
        assert_eq!(low, Next::RetryIn(Duration::ZERO), "full jitter reaches zero");
    }

    #[test]
    fn the_platforms_hint_is_a_floor() {
        let next = policy().after_failure(1, Duration::ZERO, Some(Duration::from_secs(30)), |max| max);
        assert_eq!(next, Next::RetryIn(Duration::from_secs(30)));
    }

    #[test]
    fn gives_up_at_max_attempts_or_max_age() {
        assert!(
            matches!(policy().after_failure(20, Duration::ZERO, None, |m| m), Next::GiveUp(r) if r.contains("20 attempts"))
        );
        assert!(
            matches!(policy().after_failure(2, Duration::from_secs(86_400), None, |m| m), Next::GiveUp(r) if r.contains("max_age"))
        );
        assert!(matches!(policy().after_failure(19, Duration::from_secs(86_399), None, |m| m), Next::RetryIn(_)));
    }
}
