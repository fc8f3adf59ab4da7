//! One thread per call (`threads = "per_call"`), the lane's side: what the channel holds of the
//! call (read from the store for the [`plan`](crate::plan)), and carrying out the plan's first
//! step. A parent ([`ThreadStyle::Parent`], Slack apps) is a post of its own, paced like any
//! other, whose id later posts reply to; a named thread ([`ThreadStyle::Named`], Discord forums)
//! starts with the call's first post. The mapping lives in the store, so a restart mid-call
//! continues the same thread; it is forgotten `delivery.forget_threads_after` after the call's
//! `call_ended`.
//!
//! [`ThreadStyle::Parent`]: crate::platforms::ThreadStyle::Parent
//! [`ThreadStyle::Named`]: crate::platforms::ThreadStyle::Named

use super::lane::{Lane, STORE_RETRY};
use crate::config::Threads;
use crate::event::EventType;
use crate::plan::{Call, Plan, Start, Thread, Where};
use crate::platforms::{rules, Outcome, Place, ThreadStyle};
use crate::store::{now_ms, Queued};
use crate::telemetry;

/// What the mapping holds for a call posted flat (its thread could not be started).
const FLAT: &str = "";
/// Appended to a thread's id in the mapping when the call's summary itself is the parent (a
/// channel that gets only summaries): such a parent is not edited.
const SUMMARY_PARENT: &str = "|summary";

impl Lane {
    /// What the channel holds of the head's call; `None` when the store cannot say now (the lane
    /// pauses and tries again).
    pub(super) async fn call(&mut self, head: &Queued) -> Option<Call> {
        let mut call = Call { no_threads: self.no_threads, ..Call::new_call() };
        let ends = EventType::from_name(&head.event_type).is_some_and(EventType::ends_call);
        if ends && self.channel().live_transcript {
            match self.store.transcript(&self.channel, &head.call_id).await {
                Ok(Some(t)) if !t.message_id.is_empty() => {
                    let lines = serde_json::from_str(&t.lines).unwrap_or_default();
                    call.transcript = Some((lines, t.part));
                    call.transcript_message = Some((t.message_id, t.thread));
                }
                Ok(_) => {}
                Err(e) => {
                    telemetry::store_failed("read a call's transcript", &e.to_string());
                    self.pause(STORE_RETRY).await;
                    return None;
                }
            }
        }
        // Only parents and named threads are remembered (a keyed thread is named by the call).
        let remembered =
            matches!(rules(self.channel().platform).threads(), ThreadStyle::Parent | ThreadStyle::Named { .. });
        if self.channel().threads != Threads::PerCall || self.no_threads || !remembered {
            return Some(call);
        }
        call.thread = match self.store.thread(&self.channel, &head.call_id).await {
            Ok(None) => Thread::None,
            Ok(Some(t)) if t == FLAT => Thread::Flat,
            Ok(Some(t)) => match t.strip_suffix(SUMMARY_PARENT) {
                Some(id) => Thread::SummaryParent(id.to_owned()),
                None => Thread::Open(t),
            },
            Err(e) => {
                telemetry::store_failed("read a call's thread", &e.to_string());
                self.pause(STORE_RETRY).await;
                return None;
            }
        };
        Some(call)
    }

    /// Carries out the plan's thread step: where its posts go, or `None` when they must wait (a
    /// parent was just posted or refused for now; the posts follow on a later turn, paced like
    /// any post). A thread that cannot be started (its template fails, the platform refuses the
    /// parent for good) leaves the call flat: its posts are never lost for want of a thread.
    pub(super) async fn place(&mut self, head: &Queued, plan: &Plan) -> Option<Place> {
        match (&plan.start, &plan.place) {
            (Some(Ok(Start::Parent(parent))), _) => {
                self.start_parent(head, parent).await;
                None
            }
            (Some(Ok(Start::Named(name))), _) => Some(Place::NewThread(name.clone())),
            (Some(Err(e)), _) => {
                telemetry::render_failed(e);
                self.remember_thread(head, FLAT.into()).await;
                Some(Place::Channel)
            }
            (None, Where::Thread(id)) => Some(Place::Thread(id.clone())),
            (None, Where::FirstPostIsParent) => Some(Place::NewThread(String::new())),
            (None, _) => Some(Place::Channel),
        }
    }

    /// Posts the parent for the head's call and remembers its id.
    async fn start_parent(&mut self, head: &Queued, parent: &str) {
        let posted = self.post(parent, &Place::Channel).await;
        match posted.outcome.settled() {
            Outcome::Delivered => self.remember_thread(head, posted.id.unwrap_or_default()).await,
            Outcome::Permanent { reason, broken: false } => {
                telemetry::thread_parent_refused(&self.channel, &head.call_id, &reason);
                self.remember_thread(head, FLAT.into()).await;
            }
            // Waits, retries and a broken channel count against the head, whose delivery this opens.
            outcome => self.failed(head, vec![head.id], outcome).await,
        }
    }

    /// Remembers the thread of the head's call on this channel.
    pub(super) async fn remember_thread(&mut self, head: &Queued, thread: String) {
        let remembered = self.store.set_thread(&self.fence, &head.call_id, thread).await;
        self.record(remembered);
    }

    /// Remembers the thread a post just started: a named thread's id, or (a summary-only
    /// channel) the summary's own id as the parent.
    pub(super) async fn thread_started(
        &mut self,
        head: &Queued,
        plan: &Plan,
        thread: Option<String>,
        id: Option<String>,
    ) {
        let thread = match plan.place {
            Where::FirstPostIsParent => id.map(|id| format!("{id}{SUMMARY_PARENT}")),
            _ => thread,
        };
        if let Some(thread) = thread {
            self.remember_thread(head, thread).await;
        }
    }

    /// After a call's `call_ended` or `call_timed_out` went out: its thread and live transcript
    /// are forgotten in a while.
    pub(super) async fn call_done(&mut self, head: &Queued) {
        let kept = self.channel().threads == Threads::PerCall || self.channel().live_transcript;
        if kept && EventType::from_name(&head.event_type).is_some_and(EventType::ends_call) {
            let at = now_ms() + self.config.delivery.forget_threads_after.as_millis() as i64;
            let forgotten = self.store.forget_call_at(&self.fence, &head.call_id, at).await;
            self.record(forgotten);
        }
    }

    /// Forgets the head's call's thread at once.
    pub(super) async fn forget_thread_now(&mut self, head: &Queued) {
        let forgotten = self.store.forget_call_at(&self.fence, &head.call_id, now_ms() - 1).await;
        self.record(forgotten);
    }
}
