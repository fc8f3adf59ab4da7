//! One channel's lane: takes the oldest queued posts from the store, paces, coalesces, posts, and
//! records the outcome. Order over throughput: later posts wait behind a retrying head.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::backoff::{Next, RetryPolicy, DEFAULT_RATE_LIMIT_WAIT};
use super::pacing::Pacer;
use super::Broken;
use crate::config::Platform;
use crate::sinks::{discord, slack, Outcome, Sink};
use crate::store::{now_ms, Queued, Store};
use crate::telemetry;

/// Queued posts read per look at the store (the most a coalesced post can gather).
const BATCH: usize = 64;
/// How often an idle lane looks at the store anyway (for posts another process queued, such as a
/// `dlq replay`).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Wait after a store failure before trying again.
const STORE_RETRY: Duration = Duration::from_secs(1);

pub(super) struct Lane {
    pub channel: String,
    pub platform: Platform,
    pub sink: Arc<dyn Sink>,
    pub store: Arc<dyn Store>,
    pub policy: RetryPolicy,
    pub pacer: Pacer,
    pub coalesce: bool,
    pub wake: Arc<Notify>,
    pub stop: watch::Receiver<bool>,
    pub broken: Broken,
}

impl Lane {
    pub async fn run(mut self) {
        while !*self.stop.borrow() {
            let batch = match self.store.pending(&self.channel, BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    telemetry::store_failed("read the queue", &e.to_string());
                    self.pause(STORE_RETRY).await;
                    continue;
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = self.stop.changed() => {}
                }
                continue;
            }
            if let Some(why) = self.broken.reason(&self.channel) {
                let ids = batch.iter().map(|q| q.id).collect();
                self.record(self.store.dead_letter(ids, format!("channel is broken: {why}")).await);
                telemetry::dead_lettered(&self.channel, batch.len(), "channel is broken");
                continue;
            }
            let ready = self.pacer.ready_at(Instant::now());
            if ready > Instant::now() {
                telemetry::pacing_wait(&self.channel, ready - Instant::now());
                self.pause_until(ready).await;
                continue;
            }
            self.send(&batch).await;
        }
    }

    /// Posts the head of the queue (coalesced with what fits) within a `delivery` span.
    async fn send(&mut self, batch: &[Queued]) {
        let head = &batch[0];
        let span = tracing::info_span!("delivery", channel = %self.channel, call_id = %head.call_id, attempt = head.attempts + 1);
        self.send_in_span(batch).instrument(span).await
    }

    async fn send_in_span(&mut self, batch: &[Queued]) {
        let (taken, body) = self.assemble(batch);
        let head = &batch[0];
        let ids: Vec<i64> = batch[..taken].iter().map(|q| q.id).collect();
        self.pacer.record(Instant::now());
        let posted = self.sink.post(&body).await;
        if let Some(pause) = posted.pause {
            self.pacer.block_until(Instant::now() + pause);
        }
        let age = Duration::from_millis((now_ms() - head.accepted_at_ms).max(0) as u64);
        match posted.outcome {
            Outcome::Delivered => {
                self.record(self.store.delivered(ids).await);
                let latencies =
                    batch[..taken].iter().map(|q| Duration::from_millis((now_ms() - q.accepted_at_ms).max(0) as u64));
                telemetry::delivered(&self.channel, &head.call_id, taken, head.attempts + 1, latencies);
            }
            Outcome::RateLimited { after, reason } => {
                let wait = after.unwrap_or(DEFAULT_RATE_LIMIT_WAIT);
                telemetry::rate_limited(&self.channel, wait, &reason);
                self.pacer.block_until(Instant::now() + wait);
            }
            Outcome::Retry { after, reason } => {
                let attempts = head.attempts + 1;
                telemetry::attempt_failed(&self.channel, &head.call_id, attempts, &reason);
                match self.policy.after_failure(attempts, age, after, |max| fastrand::u64(0..=max)) {
                    Next::RetryIn(delay) => {
                        self.record(self.store.failed_attempt(ids, reason).await);
                        self.pacer.block_until(Instant::now() + delay);
                    }
                    Next::GiveUp(why) => {
                        self.record(self.store.dead_letter(ids, format!("{why}; last answer: {reason}")).await);
                        telemetry::dead_lettered(&self.channel, taken, &why);
                    }
                }
            }
            Outcome::Permanent { reason, broken } => {
                self.record(self.store.dead_letter(ids, reason.clone()).await);
                telemetry::dead_lettered(&self.channel, taken, &reason);
                if broken {
                    self.broken.mark(&self.channel, &reason);
                    telemetry::channel_broken(&self.channel, &reason);
                }
            }
        }
    }

    /// The body for the head of the queue, merged with the coalescible posts right behind it
    /// while they fit; how many posts it covers.
    fn assemble(&self, batch: &[Queued]) -> (usize, String) {
        let head = &batch[0];
        if !self.coalesce || !head.coalesce || batch.len() == 1 {
            return (1, head.body.clone());
        }
        let Ok(mut merged) = serde_json::from_str::<Value>(&head.body) else { return (1, head.body.clone()) };
        let mut taken = 1;
        for next in &batch[1..] {
            let Ok(value) = serde_json::from_str::<Value>(&next.body) else { break };
            let fits = next.coalesce
                && match self.platform {
                    Platform::Slack => slack::merge(&mut merged, &value),
                    Platform::Discord => discord::merge(&mut merged, &value),
                };
            if !fits {
                break;
            }
            taken += 1;
        }
        if taken == 1 {
            return (1, head.body.clone());
        }
        (taken, serde_json::to_string(&merged).expect("JSON values serialise"))
    }

    fn record(&self, result: Result<(), crate::store::StoreError>) {
        if let Err(e) = result {
            telemetry::store_failed("record a delivery outcome", &e.to_string());
        }
    }

    async fn pause(&mut self, d: Duration) {
        self.pause_until(Instant::now() + d).await;
    }

    /// Sleeps until `t`, or until shutdown is asked for.
    async fn pause_until(&mut self, t: Instant) {
        tokio::select! {
            _ = tokio::time::sleep_until(t) => {}
            _ = self.stop.changed() => {}
        }
    }
}
