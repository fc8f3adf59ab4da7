//! Pacing: when the next post to a webhook may leave, from its budget windows ("at most N posts in
//! any D") and from the platform's own signals (429, rate-limit headers). Exact sliding windows:
//! the last N send times are kept, so a burst never exceeds any window.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// One channel's pacer.
#[derive(Debug, Clone)]
pub struct Pacer {
    windows: Vec<(u32, Duration)>,
    sent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl Pacer {
    /// A pacer for budget windows `(posts, per)`.
    pub fn new(windows: &[(u32, Duration)]) -> Self {
        Self { windows: windows.to_vec(), sent: VecDeque::new(), blocked_until: None }
    }

    /// The earliest instant the next post may leave.
    pub fn ready_at(&self, now: Instant) -> Instant {
        let mut at = now.max(self.blocked_until.unwrap_or(now));
        for &(n, per) in &self.windows {
            let n = n as usize;
            if self.sent.len() >= n {
                at = at.max(self.sent[self.sent.len() - n] + per);
            }
        }
        at
    }

    /// Records a post leaving at `at`.
    pub fn record(&mut self, at: Instant) {
        self.sent.push_back(at);
        let keep = self.windows.iter().map(|w| w.0 as usize).max().unwrap_or(1);
        while self.sent.len() > keep {
            self.sent.pop_front();
        }
    }

    /// Holds every post until `until` (a 429's delay, or a reset time from headers).
    pub fn block_until(&mut self, until: Instant) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
    }

    /// The state to hand to the channel's next holder (another relay, or this one after a
    /// restart): send times and the block, as Unix milliseconds (`now` is `now_ms`). Relays'
    /// clocks are assumed synchronised (NTP); a skew of a few milliseconds shifts the budget by as
    /// much.
    pub fn snapshot(&self, now: Instant, now_ms: i64) -> String {
        let wall = |t: Instant| {
            now_ms + t.saturating_duration_since(now).as_millis() as i64
                - now.saturating_duration_since(t).as_millis() as i64
        };
        serde_json::json!({
            "sent": self.sent.iter().map(|&t| wall(t)).collect::<Vec<_>>(),
            "blocked_until": self.blocked_until.map(wall),
        })
        .to_string()
    }

    /// Takes up a state [`Pacer::snapshot`] saved, on top of what this pacer knows. A state it
    /// cannot read is ignored (pacing starts afresh, as after a first start).
    pub fn restore(&mut self, saved: &str, now: Instant, now_ms: i64) {
        let Ok(saved) = serde_json::from_str::<serde_json::Value>(saved) else { return };
        let at = |ms: i64| match ms >= now_ms {
            true => Some(now + Duration::from_millis((ms - now_ms) as u64)),
            false => now.checked_sub(Duration::from_millis((now_ms - ms) as u64)),
        };
        let mut sent: Vec<Instant> = saved["sent"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_i64().and_then(at))
            .chain(self.sent.iter().copied())
            .collect();
        sent.sort();
        sent.dedup();
        self.sent = VecDeque::new();
        sent.into_iter().for_each(|t| self.record(t));
        if let Some(until) = saved["blocked_until"].as_i64().and_then(at) {
            self.block_until(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_spread_to_fit_every_window() {
        let t0 = Instant::now();
        let mut p = Pacer::new(&[(5, Duration::from_secs(2)), (30, Duration::from_secs(60))]);
        let mut now = t0;
        let mut times = Vec::new();
        for _ in 0..40 {
            now = p.ready_at(now);
            p.record(now);
            times.push(now - t0);
        }
        for (i, t) in times.iter().enumerate() {
            if i >= 5 {
                assert!(*t >= times[i - 5] + Duration::from_secs(2), "5 per 2 s broken at {i}");
            }
            if i >= 30 {
                assert!(*t >= times[i - 30] + Duration::from_secs(60), "30 per minute broken at {i}");
            }
        }
        assert_eq!(times[4], Duration::ZERO, "the first five leave at once");
        assert_eq!(times[5], Duration::from_secs(2));
        assert_eq!(times[30], Duration::from_secs(60), "the 31st waits for the minute window");
    }

    #[test]
    fn a_new_holder_continues_the_budget_and_the_block() {
        let t0 = Instant::now();
        let windows = [(5, Duration::from_secs(2))];
        let mut first = Pacer::new(&windows);
        for i in 0..5 {
            first.record(t0 + Duration::from_millis(100 * i));
        }
        first.block_until(t0 + Duration::from_secs(3));
        let saved = first.snapshot(t0 + Duration::from_millis(500), 1_000_500);
        // Another relay (its own monotonic clock) takes over 200 ms later by the wall clock.
        let t1 = Instant::now() + Duration::from_secs(100);
        let mut next = Pacer::new(&windows);
        next.restore(&saved, t1, 1_000_700);
        assert_eq!(next.ready_at(t1), t1 + Duration::from_millis(2300), "the 429's block carries over");
        next.restore(r#"{"sent":[1000000,1000100,1000200,1000300,1000400]}"#, t1, 1_000_700);
        assert_eq!(next.sent.len(), 5, "a state seen twice is not counted twice");
        let mut unblocked = Pacer::new(&windows);
        unblocked.restore(r#"{"sent":[1000000,1000100,1000200,1000300,1000400]}"#, t1, 1_000_700);
        assert_eq!(unblocked.ready_at(t1), t1 + Duration::from_millis(1300), "the 6th post waits for the window");
        let mut fresh = Pacer::new(&windows);
        fresh.restore("not json", t1, 1_000_700);
        assert_eq!(fresh.ready_at(t1), t1);
    }

    #[test]
    fn one_per_second_and_blocks() {
        let t0 = Instant::now();
        let mut p = Pacer::new(&[(1, Duration::from_secs(1))]);
        assert_eq!(p.ready_at(t0), t0);
        p.record(t0);
        assert_eq!(p.ready_at(t0), t0 + Duration::from_secs(1));
        p.block_until(t0 + Duration::from_secs(5));
        assert_eq!(p.ready_at(t0 + Duration::from_secs(2)), t0 + Duration::from_secs(5));
        p.block_until(t0 + Duration::from_secs(3));
        assert_eq!(p.ready_at(t0), t0 + Duration::from_secs(5), "a shorter block never shortens a longer one");
    }
}
