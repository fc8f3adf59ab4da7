//! The delivery plan: what one event becomes on one channel, given what the channel already holds
//! of the call. Pure (rendering only, no I/O), and the one answer to that question: the lane
//! sends what it says, and `check`, `callrelay render` and the console's playground show it, so
//! a preview is what the lane would post.
//!
//! A plan is at most three steps, in order: how the call's thread starts (a parent post, or the
//! name of a new thread), the posts themselves (the event's template, a summary-only channel's
//! summary then its transcript, or the call's live-transcript message), and an edit of the
//! thread's parent with the call's outcome.

use serde_json::Value;

use crate::config::Threads;
use crate::event::EventType;
use crate::platforms::{rules, Channel, ThreadStyle};
use crate::render::{RenderError, Renderer};

/// What the channel already holds of the call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Call {
    /// The call's thread on this channel.
    pub thread: Thread,
    /// The live transcript message being edited: the utterances it shows and its part (1 for the
    /// first message). `None`: the next utterance starts a message (part `next_part`).
    pub transcript: Option<(Vec<Value>, u32)>,
    /// The call's live transcript message on this channel (its id, and the thread it is in),
    /// which an ending event closes.
    pub transcript_message: Option<(String, Option<String>)>,
    /// The part a new transcript message gets when none is being edited.
    pub next_part: u32,
    /// The platform said this channel takes no threads: everything goes flat.
    pub no_threads: bool,
}

impl Call {
    /// A call the channel has seen nothing of: what previews show.
    pub fn new_call() -> Call {
        Call { next_part: 1, ..Call::default() }
    }
}

/// A call's thread on a channel, as the lane remembers it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Thread {
    /// None yet: this event starts it.
    #[default]
    None,
    /// The call is posted flat (its thread could not be started).
    Flat,
    /// Posts go into this thread (a parent's id, or a named thread's id).
    Open(String),
    /// The thread's parent is the call's summary (a summary-only channel): it is never edited.
    SummaryParent(String),
}

/// How the call's thread starts with this event.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// Post this parent first; the posts reply to it.
    Parent(String),
    /// The first post creates a thread of this name; the rest go into it.
    Named(String),
}

/// Where the posts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Where {
    /// The channel itself.
    Channel,
    /// The call's existing thread.
    Thread(String),
    /// The thread [`Plan::start`] starts (a parent's replies, or the named thread).
    Started,
    /// A summary-only channel: the first post (the summary) becomes the thread's parent and the
    /// rest reply to it.
    FirstPostIsParent,
}

/// What an event becomes on a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// How the call's thread starts, when this event starts it; an error when the thread's
    /// template fails (the lane then posts the call flat).
    pub start: Option<Result<Start, RenderError>>,
    /// Where the posts go.
    pub place: Where,
    /// The posts, in order, each within the platform's limits.
    pub posts: Vec<String>,
    /// What fitting the posts to the limits changed.
    pub notes: Vec<String>,
    /// The posts are the call's live-transcript message (an edit when the call has one).
    pub transcript: bool,
    /// The utterances the transcript message shows after this event.
    pub transcript_lines: Vec<Value>,
    /// The transcript message's part.
    pub part: u32,
    /// After the posts, the thread's parent redrawn with the call's outcome (the `call_started`
    /// template with the `call_ended` or `call_timed_out` event); an error when that template
    /// fails for it.
    pub edit_parent: Option<Result<String, RenderError>>,
    /// After the posts, the call's live transcript message redrawn as closed (the `transcript`
    /// template with `ended` set to the ending event's type).
    pub close_transcript: Option<Result<String, RenderError>>,
    /// The template kind the posts are drawn with (`message`, `transcript`, …).
    pub kind: &'static str,
}

/// What `event_type` with `context` (a serialised event) becomes on `channel`, for a call the
/// channel holds as `call` says.
pub fn plan(
    renderer: &Renderer,
    channel: &Channel,
    event_type: EventType,
    context: &Value,
    call: &Call,
) -> Result<Plan, RenderError> {
    let style = rules(channel.platform).threads();
    let threaded = channel.threads == Threads::PerCall && !call.no_threads && style != ThreadStyle::Unthreaded;
    let ended = event_type.ends_call();
    let transcript = channel.live_transcript && event_type == EventType::Message;
    let summary_mode = threaded
        && style == ThreadStyle::Parent
        && ended
        && matches!(call.thread, Thread::None | Thread::SummaryParent(_));
    // On a channel whose threads have a parent post, a `call_started` is that parent.
    let started_is_parent = threaded && style == ThreadStyle::Parent && event_type == EventType::CallStarted;

    let mut plan = Plan {
        start: None,
        place: Where::Channel,
        posts: Vec::new(),
        notes: Vec::new(),
        transcript,
        transcript_lines: Vec::new(),
        part: 1,
        edit_parent: None,
        close_transcript: None,
        kind: event_type.as_str(),
    };
    if ended && channel.live_transcript && call.transcript_message.is_some() {
        let (lines, part) = call.transcript.clone().unwrap_or_default();
        let mut closing = context.clone();
        closing["ended"] = Value::from(event_type.as_str());
        plan.close_transcript =
            Some(transcript_message(renderer, channel, &closing, &lines, part.max(1)).map(|r| r.posts.concat()));
    }
    if transcript {
        let (shown, part) = match &call.transcript {
            Some((shown, part)) => (shown.clone(), *part),
            None => (Vec::new(), call.next_part.max(1)),
        };
        let mut lines = shown;
        lines.push(context.get("message").cloned().unwrap_or(Value::Null));
        let rendered = transcript_message(renderer, channel, context, &lines, part)?;
        (plan.posts, plan.notes, plan.transcript_lines, plan.part, plan.kind) =
            (rendered.posts, rendered.notes, lines, part, "transcript");
    } else if summary_mode {
        // The summary without its transcript is the parent; the transcript goes into the thread.
        let mut summary = context.clone();
        summary["messages"] = Value::Array(Vec::new());
        let rendered = renderer.render_kind(channel, event_type.as_str(), &summary)?;
        (plan.posts, plan.notes) = (rendered.posts, rendered.notes);
        if context["messages"].as_array().is_some_and(|m| !m.is_empty()) {
            let mut with_transcript = context.clone();
            with_transcript["part"] = Value::from(1);
            let rendered = renderer.render_kind(channel, "transcript", &with_transcript)?;
            plan.posts.extend(rendered.posts);
            plan.notes.extend(rendered.notes);
        }
    } else if !started_is_parent {
        let rendered = renderer.render(channel, event_type, context)?;
        (plan.posts, plan.notes) = (rendered.posts, rendered.notes);
    }

    if !threaded {
        return Ok(plan);
    }
    plan.place = match &call.thread {
        // A keyed thread needs nothing remembered: every post names it by the call's id.
        _ if style == ThreadStyle::Keyed => {
            Where::Thread(context.get("call_id").and_then(Value::as_str).unwrap_or_default().to_owned())
        }
        Thread::Flat => Where::Channel,
        Thread::Open(id) | Thread::SummaryParent(id) => Where::Thread(id.clone()),
        Thread::None if summary_mode => Where::FirstPostIsParent,
        Thread::None => {
            plan.start = Some(match style {
                ThreadStyle::Parent => renderer
                    .render_kind(channel, "call_started", &started(context))
                    .map(|r| Start::Parent(r.posts.into_iter().next().unwrap_or_default())),
                ThreadStyle::Named { .. } | ThreadStyle::Keyed | ThreadStyle::Unthreaded => {
                    renderer.thread_name(channel, context).map(Start::Named)
                }
            });
            Where::Started
        }
    };
    // A summary in a thread is also shown in the channel when the channel asks for it.
    if channel.broadcast_summary && ended && !summary_mode && plan.place != Where::Channel {
        if let Some(first) = plan.posts.first_mut() {
            *first = rules(channel.platform).also_in_channel(first);
        }
    }
    let parent_posted = matches!(call.thread, Thread::Open(_)) || matches!(plan.start, Some(Ok(Start::Parent(_))));
    if ended && style == ThreadStyle::Parent && !summary_mode && parent_posted {
        plan.edit_parent = Some(
            renderer
                .render_kind(channel, "call_started", context)
                .map(|r| r.posts.into_iter().next().unwrap_or_default()),
        );
    }
    Ok(plan)
}

/// The `call_started` event's context made from `context`, any event of the call (the thread's
/// parent when `call_started` itself was not routed to the channel): its call, caller, agent and
/// time, as the relay's own `call_started` has them.
fn started(context: &Value) -> Value {
    let mut started = context.clone();
    started["event_type"] = Value::from(EventType::CallStarted.as_str());
    started["message"] = Value::Null;
    started["messages"] = Value::Array(Vec::new());
    started
}

/// The call as an event of `event_type` usually finds it on channel `channel`, for previews: a
/// `call_ended` on a threaded channel whose routes also send it the call's `message` events finds
/// the thread those started; anything else, a new call.
pub fn usual_call(config: &crate::setup::Config, channel: &str, event_type: EventType) -> Call {
    let threaded = config.channels.get(channel).is_some_and(|c| c.threads == Threads::PerCall);
    let gets_messages = config
        .router
        .routes()
        .iter()
        .any(|r| r.channels.iter().any(|c| c == channel) && r.events.contains(&EventType::Message));
    match event_type {
        // A time-out goes to the channels holding the call's thread, whatever their routes.
        EventType::CallTimedOut if threaded => {
            Call { thread: Thread::Open("the call's thread".into()), ..Call::new_call() }
        }
        EventType::CallEnded if threaded && gets_messages => {
            Call { thread: Thread::Open("the call's thread".into()), ..Call::new_call() }
        }
        _ => Call::new_call(),
    }
}

/// The call's live-transcript message showing `lines`, as part `part`, with the latest event's
/// `context`.
pub fn transcript_message(
    renderer: &Renderer,
    channel: &Channel,
    context: &Value,
    lines: &[Value],
    part: u32,
) -> Result<crate::render::Rendered, RenderError> {
    let mut context = context.clone();
    context["messages"] = Value::Array(lines.to_vec());
    context["part"] = Value::from(part);
    if context.get("ended").is_none() {
        context["ended"] = Value::Null;
    }
    renderer.render_kind(channel, "transcript", &context)
}

#[cfg(test)]
mod tests;
