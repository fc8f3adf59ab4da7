//! A live transcript (`live_transcript = true`): instead of one post per utterance, one message
//! per call, edited as utterances arrive; every edit carries all the utterances waiting. When the
//! next utterances no longer fit the message (the platform's limits, or what it shows of an edited message),
//! or Discord caps edits of an old message (30046), a new message continues it. The message, its
//! part number and the utterances it shows are kept in the store, so a restart goes on editing it.

use serde_json::Value;

use super::lane::{Lane, STORE_RETRY};
use crate::event::EventType;
use crate::plan::{plan, transcript_message};
use crate::platforms::{rules, Misplaced, Outcome, Place};
use crate::store::{now_ms, Content, Queued, Transcript};
use crate::telemetry;

/// A message of the transcript, ready to post or edit.
struct Draft {
    /// How many of the waiting entries it takes in.
    taken: usize,
    /// The body.
    body: String,
    /// The utterances it shows.
    lines: Vec<Value>,
}

impl Lane {
    /// Whether the head goes into a live transcript rather than a post of its own.
    pub(super) fn transcribed(&self, head: &Queued) -> bool {
        self.channel().live_transcript
            && head.event_type == EventType::Message.as_str()
            && matches!(head.content, Content::Event(_))
    }

    /// Adds the call's waiting utterances (the head and the same call's messages right behind it)
    /// to its transcript: an edit of the current message, or a new one that continues it.
    /// `false` when not even the head fits a message of its own (it is then posted as usual).
    pub(super) async fn transcribe(&mut self, batch: &[Queued]) -> bool {
        let head = &batch[0];
        let waiting: Vec<(&Queued, Value)> = batch
            .iter()
            .take_while(|q| q.call_id == head.call_id && self.transcribed(q))
            // Stop at an entry whose event cannot be read, so none behind it overtakes it (as the
            // head it then takes the usual path, and becomes a dead letter naming why).
            .map_while(|q| match &q.content {
                Content::Event(e) => serde_json::from_str::<Value>(e).ok().map(|v| (q, v)),
                Content::Rendered { .. } => None,
            })
            .collect();
        let Some((_, latest)) = waiting.last() else { return false };
        let latest = latest.clone();
        // Where the transcript goes (starting the call's thread first, as the plan says).
        let Some(call) = self.call(head).await else { return true };
        let head_plan = match plan(&self.config.renderer, self.channel(), EventType::Message, &waiting[0].1, &call) {
            Ok(p) => p,
            Err(_) => return false, // posted as usual, where the failure becomes a dead letter naming why
        };
        let Some(place) = self.place(head, &head_plan).await else { return true };
        let current = match self.store.transcript(&self.channel, &head.call_id).await {
            Ok(t) => t,
            Err(e) => {
                telemetry::store_failed("read a call's transcript", &e.to_string());
                self.pause(STORE_RETRY).await;
                return true;
            }
        };
        let new: Vec<Value> = waiting.iter().map(|(_, e)| e.get("message").cloned().unwrap_or(Value::Null)).collect();
        let editing = current.as_ref().filter(|t| !t.message_id.is_empty());
        let shown: Vec<Value> = editing.and_then(|t| serde_json::from_str(&t.lines).ok()).unwrap_or_default();
        let part = current.as_ref().map_or(1, |t| t.part);
        // Into the current message if anything fits; else a new message continues the transcript.
        let (draft, target, part) = match editing.and_then(|t| self.draft(&latest, &shown, &new, part).map(|d| (d, t)))
        {
            Some((draft, t)) => (draft, Place::Edit { id: t.message_id.clone(), thread: t.thread.clone() }, part),
            None => {
                let part = if current.is_some() { part + 1 } else { 1 };
                match self.draft(&latest, &[], &new, part) {
                    Some(draft) => (draft, place.clone(), part),
                    None => return false,
                }
            }
        };
        let ids: Vec<i64> = waiting[..draft.taken].iter().map(|(q, _)| q.id).collect();
        if !self.edit_allowed(&target).await {
            return true;
        }
        let posted = self.post(&draft.body, &target).await;
        match posted.outcome {
            Outcome::Delivered => {
                // The thread the message is in, to edit it there: none for a message in the
                // channel itself (Discord refuses a `thread_id` that is not a thread).
                let thread = match (&target, &place) {
                    (Place::Edit { thread, .. }, _) => thread.clone(),
                    (_, Place::Thread(t)) => Some(t.clone()),
                    (Place::NewThread(_), _) => posted.thread.clone(),
                    _ => None,
                };
                if let (Place::NewThread(_), Some(t)) = (&target, &posted.thread) {
                    self.remember_thread(head, t.clone()).await;
                }
                let message_id = match &target {
                    Place::Edit { id, .. } => id.clone(),
                    _ => posted.id.unwrap_or_default(),
                };
                let lines = Value::Array(draft.lines).to_string();
                let saved = Transcript { message_id, thread, part, lines };
                let saved = self.store.set_transcript(&self.fence, &head.call_id, saved).await;
                self.record(saved);
                self.record(self.store.delivered(&self.fence, ids.clone()).await);
                let latencies = waiting[..draft.taken]
                    .iter()
                    .map(|(q, _)| std::time::Duration::from_millis((now_ms() - q.accepted_at_ms).max(0) as u64));
                telemetry::delivered(&self.channel, &head.call_id, ids.len(), head.attempts + 1, latencies);
            }
            Outcome::Misplaced { why: Misplaced::NotEditable | Misplaced::ThreadArchived, reason }
                if matches!(target, Place::Edit { .. }) =>
            {
                // The message can no longer be edited (Discord's edit cap on an hour-old message,
                // an archived thread, a deleted message): the same utterances go into a new
                // message, in the call's thread (a post unarchives it).
                telemetry::transcript_continued(&self.channel, &head.call_id, &reason);
                let next = Transcript { message_id: String::new(), thread: None, part, lines: "[]".into() };
                let saved = self.store.set_transcript(&self.fence, &head.call_id, next).await;
                self.record(saved);
            }
            Outcome::Misplaced { why: Misplaced::ThreadArchived | Misplaced::ThreadGone, reason }
                if matches!(target, Place::Thread(_) | Place::Edit { .. }) =>
            {
                // The call's thread is locked or gone: the transcript goes on in a new thread.
                telemetry::thread_archived(&self.channel, &head.call_id, &reason);
                self.forget_thread_now(head).await;
            }
            Outcome::Misplaced { why: Misplaced::NotAForum, reason } if matches!(target, Place::NewThread(_)) => {
                self.no_threads = true;
                telemetry::threads_unavailable(&self.channel, &reason);
            }
            outcome => self.failed(head, ids, outcome).await,
        }
        true
    }

    /// The message showing `shown` plus as many of `new` as fit (at least one); `None` when not
    /// even one more fits.
    fn draft(&self, latest: &Value, shown: &[Value], new: &[Value], part: u32) -> Option<Draft> {
        let mut best = None;
        for taken in 1..=new.len() {
            let lines: Vec<Value> = shown.iter().chain(&new[..taken]).cloned().collect();
            let rendered = match transcript_message(&self.config.renderer, self.channel(), latest, &lines, part) {
                Ok(r) => r,
                Err(e) => {
                    telemetry::render_failed(&e);
                    return None;
                }
            };
            let fits =
                rendered.posts.len() == 1 && rendered.notes.is_empty() && self.within_text_limit(&rendered.posts[0]);
            if !fits {
                break;
            }
            best = Some(Draft { taken, body: rendered.posts.into_iter().next().expect("one post"), lines });
        }
        best
    }

    /// Whether the platform can keep editing a transcript message this long.
    fn within_text_limit(&self, body: &str) -> bool {
        serde_json::from_str::<Value>(body).is_ok_and(|v| rules(self.channel().platform).transcript_fits(&v))
    }
}
