//! One thread per call (`threads = "per_call"`): where a lane's post goes, starting the call's
//! thread when it has none, in the platform's [`ThreadStyle`]. A parent (Slack apps): the call's
//! first event posts a parent (the `thread_parent` template) whose id every later post replies
//! to; after the `call_ended` summary, the parent is edited to show the outcome. A named thread
//! (Discord forums): the call's first post creates a thread (`thread_name`) whose id later posts
//! go into. The mapping lives in the store, so a restart mid-call continues the same thread; it is
//! forgotten `delivery.forget_threads_after` after the call's `call_ended`.

use serde_json::Value;

use super::lane::{Lane, STORE_RETRY};
use crate::config::Threads;
use crate::event::EventType;
use crate::platforms::{rules, Outcome, Place, ThreadStyle};
use crate::store::{now_ms, Content, Queued};
use crate::telemetry;

/// What the mapping holds for a call posted flat (its thread could not be started).
const FLAT: &str = "";
/// Appended to a Slack thread's `ts` in the mapping when the call's summary itself is the parent
/// (a channel that gets only summaries): such a parent is not edited.
const SUMMARY_PARENT: &str = "|summary";

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
            Some(thread) => Some(Place::Thread(thread.trim_end_matches(SUMMARY_PARENT).to_owned())),
            // A summary-only Slack channel: the summary's first post starts the thread.
            None if self.summary_parent(head, None) => Some(Place::NewThread(String::new())),
            None => {
                // A post from before store version 2 carries no event to start a thread from.
                let Content::Event(event) = &head.content else { return Some(Place::Channel) };
                let context: Value = serde_json::from_str(event).unwrap_or(Value::Null);
                match rules(self.channel().platform).threads() {
                    ThreadStyle::Named { .. } => match self.config.renderer.thread_name(self.channel(), &context) {
                        Ok(name) => Some(Place::NewThread(name)),
                        Err(e) => {
                            telemetry::render_failed(&e);
                            self.remember_thread(head, FLAT.into()).await;
                            Some(Place::Channel)
                        }
                    },
                    ThreadStyle::Parent => {
                        self.start_parent(head, &context).await;
                        None
                    }
                }
            }
        }
    }

    /// Posts the Slack parent for the head's call and remembers its `ts`. A parent that cannot be
    /// posted for good (its template fails, Slack refuses it) leaves the call flat: its posts are
    /// never lost for want of a thread.
    async fn start_parent(&mut self, head: &Queued, context: &Value) {
        let parent = match self.config.renderer.render_kind(self.channel(), "thread_parent", context) {
            Ok(rendered) => rendered.posts.into_iter().next().unwrap_or_default(),
            Err(e) => {
                telemetry::render_failed(&e);
                self.remember_thread(head, FLAT.into()).await;
                return;
            }
        };
        let posted = self.post(&parent, &Place::Channel).await;
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

    /// After a call's `call_ended` went out: its thread is forgotten in a while.
    pub(super) async fn call_done(&mut self, head: &Queued) {
        if self.channel().threads == Threads::PerCall && head.event_type == EventType::CallEnded.as_str() {
            let at = now_ms() + self.config.delivery.forget_threads_after.as_millis() as i64;
            let forgotten = self.store.forget_call_at(&self.fence, &head.call_id, at).await;
            self.record(forgotten);
        }
    }

    /// Whether the head is a `call_ended` whose summary is (or becomes) its Slack thread's parent:
    /// nothing of the call came to this channel before it (`known` is the call's mapping, if
    /// read).
    pub(super) fn summary_parent(&self, head: &Queued, known: Option<&str>) -> bool {
        rules(self.channel().platform).threads() == ThreadStyle::Parent
            && self.channel().threads == Threads::PerCall
            && !self.no_threads
            && head.event_type == EventType::CallEnded.as_str()
            && matches!(head.content, Content::Event(_))
            && known.is_none_or(|k| k.ends_with(SUMMARY_PARENT))
    }

    /// For a summary-only Slack channel: whether the head's summary is its thread's parent.
    pub(super) async fn summary_mode(&mut self, head: &Queued) -> bool {
        if !self.summary_parent(head, None) {
            return false;
        }
        match self.store.thread(&self.channel, &head.call_id).await {
            Ok(known) => self.summary_parent(head, known.as_deref()),
            Err(_) => false,
        }
    }

    /// A summary-only channel's posts for a `call_ended`: the summary without its transcript (the
    /// thread's parent), then the transcript (`transcript` template) in the thread.
    pub(super) fn summary_posts(&self, head: &Queued) -> Result<Vec<String>, crate::render::RenderError> {
        let Content::Event(event) = &head.content else { return Ok(Vec::new()) };
        let context: Value = serde_json::from_str(event).unwrap_or(Value::Null);
        let mut summary = context.clone();
        summary["messages"] = Value::Array(Vec::new());
        let renderer = &self.config.renderer;
        let mut posts = renderer.render_kind(self.channel(), EventType::CallEnded.as_str(), &summary)?.posts;
        if context["messages"].as_array().is_some_and(|m| !m.is_empty()) {
            let mut transcript = context;
            transcript["part"] = Value::from(1);
            posts.extend(renderer.render_kind(self.channel(), "transcript", &transcript)?.posts);
        }
        Ok(posts)
    }

    /// The `ts` of the Slack parent to edit with the call's outcome, when the head is a threaded
    /// call's `call_ended` and the parent was a `thread_parent` post.
    pub(super) fn parent_to_edit(&self, head: &Queued, place: &Place, summary_mode: bool) -> Option<String> {
        match place {
            Place::Thread(ts)
                if !summary_mode
                    && rules(self.channel().platform).threads() == ThreadStyle::Parent
                    && head.event_type == EventType::CallEnded.as_str()
                    && matches!(head.content, Content::Event(_)) =>
            {
                Some(ts.clone())
            }
            _ => None,
        }
    }

    /// Remembers the thread a post just started: Discord's new thread, or (a summary-only Slack
    /// channel) the summary's own `ts`.
    pub(super) async fn thread_started(
        &mut self,
        head: &Queued,
        posted_thread: Option<String>,
        posted_id: Option<String>,
    ) {
        let thread = match rules(self.channel().platform).threads() {
            ThreadStyle::Named { .. } => posted_thread,
            ThreadStyle::Parent => posted_id.map(|ts| format!("{ts}{SUMMARY_PARENT}")),
        };
        if let Some(thread) = thread {
            self.remember_thread(head, thread).await;
        }
    }

    /// The parent as the `thread_parent` template draws it for the ended call; `None` (logged)
    /// when the template fails for it.
    pub(super) fn edited_parent(&self, head: &Queued) -> Option<String> {
        let Content::Event(event) = &head.content else { return None };
        let context: Value = serde_json::from_str(event).ok()?;
        match self.config.renderer.render_kind(self.channel(), "thread_parent", &context) {
            Ok(rendered) => rendered.posts.into_iter().next(),
            Err(e) => {
                telemetry::render_failed(&e);
                None
            }
        }
    }

    /// Forgets the head's call's thread at once.
    pub(super) async fn forget_thread_now(&mut self, head: &Queued) {
        let forgotten = self.store.forget_call_at(&self.fence, &head.call_id, now_ms() - 1).await;
        self.record(forgotten);
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
