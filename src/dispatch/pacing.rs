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
