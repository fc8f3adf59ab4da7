//! One channel's lane: takes the oldest queue entries from the store, renders each event with the
//! configuration in force now, paces, coalesces, posts, and records the outcome. Order over
//! throughput: later entries wait behind a retrying head. A lane sends only while this relay
//! holds the channel's lease, and writes every outcome with the lease's fence.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, watch, Notify};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::backoff::{Next, RetryPolicy, DEFAULT_RATE_LIMIT_WAIT};
use super::leases::Slot;
use super::pacing::Pacer;
use super::{Broken, Paused};
use crate::config::Threads;
use crate::event::EventType;
use crate::plan::{plan, Call, Plan, Thread, Where};
use crate::platforms::{rules, Channel, Misplaced, Outcome, Place, Posted, Sink};
use crate::render::RenderError;
use crate::setup::Config;
use crate::store::{now_ms, Content, Fence, Queued, Store, StoreError};
use crate::telemetry;

/// Queued posts read per look at the store (the most a coalesced post can gather).
const BATCH: usize = 64;
/// How often an idle lane looks at the store anyway (for posts another process queued, such as a
/// `dlq replay`).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Wait after a store failure before trying again.
pub(super) const STORE_RETRY: Duration = Duration::from_secs(1);

pub(super) struct Lane {
    pub channel: String,
    /// The configuration in force: a reload replaces the lanes, so entries are always rendered
    /// with the templates of the moment they are sent.
    pub config: Arc<Config>,
    pub sink: Arc<dyn Sink>,
    pub store: Arc<dyn Store>,
    pub policy: RetryPolicy,
    pub pacer: Pacer,
    pub wake: Arc<Notify>,
    pub stop: watch::Receiver<bool>,
    pub broken: Broken,
    /// Where the console reads why this lane waits.
    pub paused: Paused,
    /// Why the pacer holds the next post: `pacing` (the budget), or what the last failure set.
    pub wait_reason: &'static str,
    /// Discord said this channel takes no threads (220003): post flat from now on.
    pub no_threads: bool,
    /// Slack app channels: the edit budget shared by every channel of the same token.
    pub edit_budget: Option<Arc<std::sync::Mutex<Pacer>>>,
    /// The channel's lease as the keeper last saw it.
    pub lease: Slot,
    /// The fence of the lease this lane last took up (token 0: none yet).
    pub fence: Fence,
    /// A token the store refused a write for: the lease moved on, whatever the keeper says yet.
    pub fenced_off: Option<i64>,
    /// Other relays' wake-ups (PostgreSQL NOTIFY), by channel name.
    pub store_wakes: Option<broadcast::Receiver<String>>,
}

impl Lane {
    pub async fn run(mut self) {
        while !*self.stop.borrow() {
            if !self.holding() {
                tokio::select! {
                    _ = self.lease.changed() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = self.stop.changed() => {}
                }
                continue;
            }
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
                    _ = woken(&mut self.store_wakes, &self.channel) => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = self.stop.changed() => {}
                }
                continue;
            }
            if let Some(why) = self.broken.reason(&self.channel) {
                let ids = batch.iter().map(|q| q.id).collect();
                self.record(self.store.dead_letter(&self.fence, ids, format!("channel is broken: {why}")).await);
                telemetry::dead_lettered(&self.channel, batch.len(), "channel is broken");
                continue;
            }
            let ready = self.pacer.ready_at(Instant::now());
            if ready > Instant::now() {
                let wait = ready - Instant::now();
                telemetry::pacing_wait(&self.channel, wait);
                if wait >= Duration::from_secs(1) {
                    self.paused.set(&self.channel, self.wait_reason, now_ms() + wait.as_millis() as i64);
                }
                self.pause_until(ready).await;
                continue;
            }
            self.paused.clear(&self.channel);
            self.wait_reason = "pacing";
            self.send(&batch).await;
            // Whoever holds the channel next continues its budget instead of bursting.
            let pacing = self.pacer.snapshot(Instant::now(), now_ms());
            let saved = self.store.save_pacing(&self.fence, pacing).await;
            self.record(saved);
        }
    }

    /// Whether this relay holds the channel's lease now. Taking up a new lease continues the
    /// previous holder's pacing.
    fn holding(&mut self) -> bool {
        let lease = self.lease.borrow_and_update().clone();
        let Some(held) = lease.filter(|h| h.valid_until > Instant::now()) else { return false };
        if self.fenced_off == Some(held.fence.token) {
            return false;
        }
        if held.fence.token != self.fence.token {
            if let Some(pacing) = &held.pacing {
                self.pacer.restore(pacing, Instant::now(), now_ms());
            }
            self.fence = held.fence;
        }
        true
    }

    /// Posts one body, paced: counts it against the budget, and holds the lane for as long as
    /// the platform's answer asks.
    pub(super) async fn post(&mut self, body: &str, place: &Place) -> Posted {
        self.post_as(body, place, None).await
    }

    /// As [`Lane::post`], naming the post by `key` when it has one (see [`Sink::post_as`]).
    pub(super) async fn post_as(&mut self, body: &str, place: &Place, key: Option<&str>) -> Posted {
        self.pacer.record(Instant::now());
        let posted = match key {
            Some(key) => self.sink.post_as(body, place, key).await,
            None => self.sink.post(body, place).await,
        };
        if let Some(pause) = posted.pause {
            self.pacer.block_until(Instant::now() + pause);
        }
        posted
    }

    /// Posts the head of the queue (coalesced with what fits) within a `delivery` span.
    async fn send(&mut self, batch: &[Queued]) {
        let head = &batch[0];
        let span = tracing::info_span!("delivery", channel = %self.channel, call_id = %head.call_id, attempt = head.attempts + 1);
        self.send_in_span(batch).instrument(span).await
    }

    async fn send_in_span(&mut self, batch: &[Queued]) {
        let head = &batch[0];
        if self.transcribed(head) && self.transcribe(batch).await {
            return;
        }
        let Some(call) = self.call(head).await else { return };
        let plan = match self.plan_of(head, &call) {
            Ok(plan) => plan,
            Err(e) => {
                telemetry::render_failed(&e);
                self.record(self.store.dead_letter(&self.fence, vec![head.id], e.to_string()).await);
                telemetry::dead_lettered(&self.channel, 1, "the template failed");
                return;
            }
        };
        // With threads, the call's thread first (a parent is a post of its own, paced).
        let Some(place) = self.place(head, &plan).await else { return };
        let posts = &plan.posts;
        // When the call ends, its thread's parent shows the outcome and its live transcript is
        // closed: edits after the posts, as the entry's last parts.
        let mut edits = Vec::new();
        let late = head.sent_parts as usize + 1 >= posts.len();
        match (&plan.edit_parent, &place) {
            (Some(Ok(body)), Place::Thread(id)) => edits.push((Place::Edit { id: id.clone(), thread: None }, body)),
            (Some(Err(e)), _) if late => telemetry::render_failed(e),
            _ => {}
        }
        match (&plan.close_transcript, &call.transcript_message) {
            (Some(Ok(body)), Some((id, thread))) => {
                edits.push((Place::Edit { id: id.clone(), thread: thread.clone() }, body))
            }
            (Some(Err(e)), _) if late => telemetry::render_failed(e),
            _ => {}
        }
        let total = posts.len() + edits.len();
        let sent = (head.sent_parts as usize).min(total);
        if sent == total {
            // The template now makes fewer posts than were already sent: nothing is left.
            self.record(self.store.delivered(&self.fence, vec![head.id]).await);
            self.call_done(head).await;
            return;
        }
        if sent == 0 && !plan.notes.is_empty() {
            telemetry::render_adjusted(&self.channel, &head.call_id, &plan.notes);
        }
        let last_part = sent + 1 == total;
        let (taken, body, place) = match posts.get(sent) {
            Some(next) if last_part && sent == 0 && self.coalescible(head) => {
                let (taken, body) = self.coalesced(head, next, &batch[1..]);
                (taken, body, place)
            }
            Some(next) => (1, next.clone(), place),
            None => {
                let (place, body) = edits.swap_remove(sent - posts.len());
                (1, body.clone(), place)
            }
        };
        let ids: Vec<i64> = batch[..taken].iter().map(|q| q.id).collect();
        if !self.edit_allowed(&place).await {
            return;
        }
        // The same key on every attempt of this part of this entry (entry ids alone are reused
        // once deleted; with the call and the time accepted they name one post).
        let key = format!("{}/{}/{}/{}", head.call_id, head.accepted_at_ms, head.id, sent);
        let posted = self.post_as(&body, &place, Some(&key)).await;
        match posted.outcome {
            Outcome::Delivered => {
                if let Place::NewThread(_) = &place {
                    self.thread_started(head, &plan, posted.thread, posted.id).await;
                }
                if !last_part {
                    self.record(self.store.parts_delivered(&self.fence, head.id, sent as u32 + 1).await);
                    telemetry::delivered(&self.channel, &head.call_id, 0, head.attempts + 1, std::iter::empty());
                    return;
                }
                self.record(self.store.delivered(&self.fence, ids).await);
                self.call_done(head).await;
                let latencies =
                    batch[..taken].iter().map(|q| Duration::from_millis((now_ms() - q.accepted_at_ms).max(0) as u64));
                telemetry::delivered(&self.channel, &head.call_id, taken, head.attempts + 1, latencies);
            }
            Outcome::Misplaced { why: Misplaced::NotAForum, reason } if matches!(place, Place::NewThread(_)) => {
                self.no_threads = true;
                telemetry::threads_unavailable(&self.channel, &reason);
            }
            Outcome::Misplaced { why: Misplaced::ThreadArchived | Misplaced::ThreadGone, reason }
                if matches!(place, Place::Thread(_)) =>
            {
                // Someone locked or deleted the call's thread: the next post starts a new one.
                telemetry::thread_archived(&self.channel, &head.call_id, &reason);
                self.forget_thread_now(head).await;
            }
            Outcome::Permanent { reason, broken: false } | Outcome::Misplaced { reason, .. }
                if matches!(place, Place::Edit { .. }) =>
            {
                // The event's posts are out; an outcome that cannot be shown on the parent or
                // the transcript is no loss.
                telemetry::parent_not_edited(&self.channel, &head.call_id, &reason);
                if last_part {
                    self.record(self.store.delivered(&self.fence, ids).await);
                    self.call_done(head).await;
                } else {
                    self.record(self.store.parts_delivered(&self.fence, head.id, sent as u32 + 1).await);
                }
            }
            outcome => self.failed(head, ids, outcome).await,
        }
    }

    /// Records a post that did not get through: waits on a 429, counts a failed attempt and
    /// schedules the retry, or gives up (dead letters; a broken channel stops).
    pub(super) async fn failed(&mut self, head: &Queued, ids: Vec<i64>, outcome: Outcome) {
        let taken = ids.len();
        let age = Duration::from_millis((now_ms() - head.accepted_at_ms).max(0) as u64);
        match outcome.settled() {
            Outcome::Delivered | Outcome::Misplaced { .. } => {}
            Outcome::RateLimited { after, reason } => {
                let wait = after.unwrap_or(DEFAULT_RATE_LIMIT_WAIT);
                telemetry::rate_limited(&self.channel, wait, &reason);
                self.wait_reason = "rate limited by the platform (429)";
                self.pacer.block_until(Instant::now() + wait);
            }
            Outcome::Retry { after, reason } => {
                let attempts = head.attempts + 1;
                telemetry::attempt_failed(&self.channel, &head.call_id, attempts, &reason);
                match self.policy.after_failure(attempts, age, after, |max| fastrand::u64(0..=max)) {
                    Next::RetryIn(delay) => {
                        self.wait_reason = "retrying after a failed attempt";
                        self.record(self.store.failed_attempt(&self.fence, ids, reason).await);
                        self.pacer.block_until(Instant::now() + delay);
                    }
                    Next::GiveUp(why) => {
                        self.record(
                            self.store.dead_letter(&self.fence, ids, format!("{why}; last answer: {reason}")).await,
                        );
                        telemetry::dead_lettered(&self.channel, taken, &why);
                    }
                }
            }
            Outcome::Permanent { reason, broken } => {
                self.record(self.store.dead_letter(&self.fence, ids, reason.clone()).await);
                telemetry::dead_lettered(&self.channel, taken, &reason);
                if broken {
                    self.broken.mark(&self.channel, &reason);
                    telemetry::channel_broken(&self.channel, &reason);
                    let shared = self.store.set_broken(&self.fence, reason).await;
                    self.record(shared);
                }
            }
        }
    }

    /// For an edit on a Slack app channel: whether the token's shared edit budget allows it now
    /// (then it is counted); otherwise waits until it would, and the caller tries again.
    pub(super) async fn edit_allowed(&mut self, place: &Place) -> bool {
        let (Place::Edit { .. }, Some(budget)) = (place, &self.edit_budget) else { return true };
        let now = Instant::now();
        let ready = {
            let mut budget = budget.lock().expect("not poisoned");
            let ready = budget.ready_at(now);
            if ready <= now {
                budget.record(now);
            }
            ready
        };
        if ready <= now {
            return true;
        }
        telemetry::pacing_wait(&self.channel, ready - now);
        self.pause_until(ready).await;
        false
    }

    pub(super) fn channel(&self) -> &Channel {
        &self.config.channels[&self.channel]
    }

    /// What an entry becomes on this channel: its event planned now with the configuration in
    /// force (see [`plan`]), or a body rendered before the store's version 2, posted as it was
    /// (made safe by the platform's `fit`, which leaves a body within the limits as it is apart
    /// from mention safety), in the call's thread if it has one.
    fn plan_of(&self, q: &Queued, call: &Call) -> Result<Plan, RenderError> {
        let fail = |message: String| RenderError {
            template: "?".into(),
            line: None,
            channel: self.channel.clone(),
            call_id: q.call_id.clone(),
            message,
        };
        let event = match &q.content {
            Content::Rendered { body, .. } => {
                let value =
                    serde_json::from_str(body).map_err(|e| fail(format!("the stored body is not JSON: {e}")))?;
                let fitted = rules(self.channel().platform).fit(self.channel(), value).map_err(|r| fail(r.message))?;
                let place = match &call.thread {
                    Thread::Open(id) | Thread::SummaryParent(id) => Where::Thread(id.clone()),
                    Thread::None | Thread::Flat => Where::Channel,
                };
                return Ok(Plan {
                    start: None,
                    place,
                    posts: fitted.posts.iter().map(Value::to_string).collect(),
                    notes: Vec::new(),
                    transcript: false,
                    transcript_lines: Vec::new(),
                    part: 1,
                    edit_parent: None,
                    close_transcript: None,
                    kind: "message",
                });
            }
            Content::Event(event) => event,
        };
        let event_type = EventType::from_name(&q.event_type)
            .ok_or_else(|| fail(format!("the stored event has an unknown type `{}`", q.event_type)))?;
        let context: Value =
            serde_json::from_str(event).map_err(|e| fail(format!("the stored event is not JSON: {e}")))?;
        plan(&self.config.renderer, self.channel(), event_type, &context, call)
    }

    /// The posts of an entry merged into the head's: a `message` on a channel without a live
    /// transcript is its template's posts whatever the call holds (the plan's posts then), and a
    /// body from before version 2 is as it was.
    fn posts_of(&self, q: &Queued) -> Result<Vec<String>, RenderError> {
        self.plan_of(q, &Call { no_threads: true, ..Call::new_call() }).map(|p| p.posts)
    }

    /// Whether an entry may be merged with its neighbours: live messages, when the channel
    /// coalesces (and, for bodies from before version 2, when they were marked so).
    fn coalescible(&self, q: &Queued) -> bool {
        self.channel().coalesce
            && q.sent_parts == 0
            && match &q.content {
                Content::Rendered { coalesce, .. } => *coalesce,
                Content::Event(_) => q.event_type == EventType::Message.as_str(),
            }
    }

    /// The head's single post merged with the coalescible entries right behind it while they fit
    /// the platform's limits (with threads, only the same call's); how many entries it covers.
    fn coalesced(&self, first: &Queued, head: &str, rest: &[Queued]) -> (usize, String) {
        let Ok(mut merged) = serde_json::from_str::<Value>(head) else { return (1, head.to_owned()) };
        let mut taken = 1;
        let threaded = self.channel().threads == Threads::PerCall;
        for next in rest {
            if !self.coalescible(next) || (threaded && next.call_id != first.call_id) {
                break;
            }
            let value = match self.posts_of(next).as_deref() {
                Ok([one]) => serde_json::from_str::<Value>(one),
                _ => break,
            };
            let fits = value.is_ok_and(|value| rules(self.channel().platform).merge(&mut merged, &value));
            if !fits {
                break;
            }
            taken += 1;
        }
        if taken == 1 {
            return (1, head.to_owned());
        }
        (taken, serde_json::to_string(&merged).expect("JSON values serialise"))
    }

    /// Reports a failed write; one the store refused for a lost lease stops this lane sending
    /// until it holds the channel again.
    pub(super) fn record(&mut self, result: Result<(), StoreError>) {
        match result {
            Ok(()) => {}
            Err(StoreError::Fenced(_)) => {
                if self.fenced_off != Some(self.fence.token) {
                    telemetry::lane_fenced(&self.channel);
                }
                self.fenced_off = Some(self.fence.token);
            }
            Err(e) => telemetry::store_failed("record a delivery outcome", &e.to_string()),
        }
    }

    pub(super) async fn pause(&mut self, d: Duration) {
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

/// Waits for another relay's wake-up for `channel` (never, without a listener).
async fn woken(wakes: &mut Option<broadcast::Receiver<String>>, channel: &str) {
    let Some(wakes) = wakes else { return std::future::pending().await };
    loop {
        match wakes.recv().await {
            Ok(c) if c == channel => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
    }
}
