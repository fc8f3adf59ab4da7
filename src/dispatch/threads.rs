//! One thread per call (`threads = "per_call"`): where a lane's post goes, starting the call's
//! thread when it has none. Slack: the call's first event posts a parent (`call_started`) whose
//! `ts` every later post replies to; after the `call_ended` summary, the parent is edited
//! (`chat.update`) to show the outcome. Discord: the call's first post creates a forum thread
//! (`thread_name`) whose id later posts go into. The mapping lives in the store, so a restart
//! mid-call continues the same thread; it is forgotten `delivery.forget_threads_after` after the
//! call's `call_ended`.

use serde_json::Value;
use tokio::time::Instant;

use super::lane::{Lane, STORE_RETRY};
use crate::config::{Platform, Threads};
use crate::event::EventType;
use crate::sinks::{discord, Outcome, Place};
use crate::store::{now_ms, Content, Queued};
use crate::telemetry;

/// What the mapping holds for a call posted flat (its thread could not be started).
const FLAT: &str = "";

impl Lane {
    /// Where the head's post goes; `None` when it must wait (a Slack parent was just posted or
    /// refused for now, and the reply follows on a later turn, paced like any post).
    pub(super) async fn place_for(&mut self, head: &Queued) -> Option<Place> {
        if self.channel().threads != Threads::PerCall || self.no_threads {
            return Some(Place::Channel);
        }
        let known = match self.store.thread(&self.channel, &head.call_id).await {
            Ok(known) => known,
            Err(e) => {
                telemetry::store_failed("read a call's thread", &e.to_string());
                self.pause(STORE_RETRY).await;
                return None;
            }
        };
        match known {
            Some(thread) if thread == FLAT => Some(Place::Channel),
            Some(thread) => Some(Place::Thread(thread)),
            None => {
                // A post from before store version 2 carries no event to start a thread from.
                let Content::Event(event) = &head.content else { return Some(Place::Channel) };
                let context: Value = serde_json::from_str(event).unwrap_or(Value::Null);
                match self.channel().platform {
                    Platform::Discord => match self.config.renderer.thread_name(self.channel(), &context) {
                        Ok(name) => Some(Place::NewThread(name)),
                        Err(e) => {
                            telemetry::render_failed(&e);
                            self.remember_thread(head, FLAT.into()).await;
                            Some(Place::Channel)
                        }
                    },
                    Platform::Slack => {
                        self.start_slack_thread(head, &context).await;
                        None
                    }
                }
            }
        }
    }

    /// Posts the Slack parent for the head's call and remembers its `ts`. A parent that cannot be
    /// posted for good (its template fails, Slack refuses it) leaves the call flat: its posts are
    /// never lost for want of a thread.
    async fn start_slack_thread(&mut self, head: &Queued, context: &Value) {
        let parent = match self.config.renderer.render_kind(self.channel(), "call_started", context) {
            Ok(rendered) => rendered.posts.into_iter().next().unwrap_or_default(),
            Err(e) => {
                telemetry::render_failed(&e);
                self.remember_thread(head, FLAT.into()).await;
                return;
            }
        };
        self.pacer.record(Instant::now());
        let posted = self.sink.post(&parent, &Place::Channel).await;
        if let Some(pause) = posted.pause {
            self.pacer.block_until(Instant::now() + pause);
        }
        match posted.outcome {
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
        let remembered = self.store.set_thread(&self.channel, &head.call_id, thread).await;
        self.record(remembered);
    }

    /// After a call's `call_ended` went out: its thread is forgotten in a while.
    pub(super) async fn call_done(&mut self, head: &Queued) {
        if self.channel().threads == Threads::PerCall && head.event_type == EventType::CallEnded.as_str() {
            let at = now_ms() + self.config.delivery.forget_threads_after.as_millis() as i64;
            let forgotten = self.store.forget_call_at(&self.channel, &head.call_id, at).await;
            self.record(forgotten);
        }
    }

    /// The `ts` of the Slack parent to edit with the call's outcome, when the head is a threaded
    /// call's `call_ended`.
    pub(super) fn parent_to_edit(&self, head: &Queued, place: &Place) -> Option<String> {
        match place {
            Place::Thread(ts)
                if self.channel().platform == Platform::Slack
                    && head.event_type == EventType::CallEnded.as_str()
                    && matches!(head.content, Content::Event(_)) =>
            {
                Some(ts.clone())
            }
            _ => None,
        }
    }

    /// The parent as the `call_started` template draws it for the ended call; `None` (logged)
    /// when the template fails for it.
    pub(super) fn edited_parent(&self, head: &Queued) -> Option<String> {
        let Content::Event(event) = &head.content else { return None };
        let context: Value = serde_json::from_str(event).ok()?;
        match self.config.renderer.render_kind(self.channel(), "call_started", &context) {
            Ok(rendered) => rendered.posts.into_iter().next(),
            Err(e) => {
                telemetry::render_failed(&e);
                None
            }
        }
    }

    /// Whether Discord refused a post because the call's thread was archived (50083).
    pub(super) fn thread_archived(&self, place: &Place, reason: &str) -> bool {
        matches!(place, Place::Thread(_))
            && self.channel().platform == Platform::Discord
            && reason.contains(discord::THREAD_ARCHIVED)
    }

    /// Forgets the head's call's thread at once.
    pub(super) async fn forget_thread_now(&mut self, head: &Queued) {
        let forgotten = self.store.forget_call_at(&self.channel, &head.call_id, now_ms() - 1).await;
        self.record(forgotten);
    }

    /// Whether Discord refused a thread because the channel is not a forum (220003).
    pub(super) fn not_a_forum(&self, place: &Place, reason: &str) -> bool {
        matches!(place, Place::NewThread(_)) && reason.contains(discord::NOT_A_FORUM)
    }

    /// A Slack summary posted into a thread is also shown in the channel when
    /// `broadcast_summary` is set (`reply_broadcast`).
    pub(super) fn broadcast_summary(&self, head: &Queued, place: &Place, body: String) -> String {
        let wanted = self.channel().broadcast_summary
            && matches!(place, Place::Thread(_))
            && head.event_type == EventType::CallEnded.as_str();
        match serde_json::from_str::<Value>(&body) {
            Ok(Value::Object(mut m)) if wanted => {
                m.insert("reply_broadcast".into(), Value::Bool(true));
                Value::Object(m).to_string()
            }
            _ => body,
        }
    }
}
