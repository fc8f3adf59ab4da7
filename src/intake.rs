//! Intake, between the receiver and the store: an accepted event routed into what to commit (the
//! event, one queue entry per channel, what it tells about its call, and the call's
//! `call_started` in case it is the first), and the relay's own `call_timed_out` likewise.
//! Pure apart from logging; no I/O, and no rendering (each channel's lane renders at delivery).

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::calls::Recall;
use crate::event::{Event, EventType};
use crate::setup::Config;
use crate::store::{CallNote, NewEvent, Remembered};
use crate::telemetry;

/// The template context and route input for an event.
pub fn context(event: &Event) -> Value {
    serde_json::to_value(event).expect("an Event always serialises")
}

/// The relay's own queue of events held until their call is looked up in the Beyond Presence
/// API (the application's lookups worker); no channel may have a name starting with `@`.
pub const LOOKUP_QUEUE: &str = "@lookup";

/// Routes `event`: the event to commit with the channels to queue it for (none when no route
/// matched; disabled channels are skipped and counted), what it tells about its call, and, when
/// the call may be new, its `call_started`, which the store commits ahead of it only if the call
/// is new there. Held for a lookup: both go to the lookup queue instead, routed once it answers.
pub fn route(config: &Config, event: &Event, known: Recall, hold: bool) -> NewEvent {
    let Recall { may_start, news, touch } = known;
    let one = |event: &Event| match hold {
        false => route_one(config, event),
        true => NewEvent {
            call_id: event.call_id.clone(),
            event_type: event.event_type.as_str().to_owned(),
            event: serde_json::to_string(event).expect("an Event always serialises"),
            channels: vec![LOOKUP_QUEUE.to_owned()],
            ..NewEvent::default()
        },
    };
    let mut routed = one(event);
    if !event.call_id.is_empty() && event.event_type != EventType::Test {
        let told = news || may_start;
        routed.call = Some(CallNote {
            agent_id: event.agent_id.clone().filter(|_| told),
            user_name: event.user_name.clone().filter(|_| told),
            call_data: (told && !event.call_data.is_empty())
                .then(|| Value::Object(event.call_data.clone()).to_string()),
            utterance: event.event_type == EventType::Message,
            ended: event.event_type == EventType::CallEnded,
            touch: touch || told,
        });
        if may_start {
            routed.started = Some(Box::new(one(&event.started())));
        }
    }
    routed
}

/// The `call_timed_out` event of a call that went quiet, as remembered, at `now`: routed, and
/// also queued for the channels holding the call's thread or live transcript (`holding`), which
/// it closes.
pub fn timed_out(config: &Config, call: &Remembered, holding: &[String], now: DateTime<Utc>) -> NewEvent {
    let at = |ms: i64| DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339());
    let silent = (now.timestamp_millis() - call.last_at_ms).max(0) as f64 / 60_000.0;
    let call_data: Map<String, Value> =
        call.call_data.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
    let event = Event {
        event_type: EventType::CallTimedOut,
        call_id: call.call_id.clone(),
        received_at: chrono::SubsecRound::trunc_subsecs(now, 3),
        user_name: call.user_name.clone(),
        agent_id: call.agent_id.clone(),
        call_data,
        message: None,
        messages: Vec::new(),
        evaluation: Default::default(),
        test_message: None,
        call: json!({
            "started_at": at(call.first_at_ms),
            "last_event_at": at(call.last_at_ms),
            "utterances": call.utterances,
            "silent_minutes": (silent * 10.0).round() / 10.0,
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    };
    let mut routed = route_one(config, &event);
    for channel in holding {
        let usable = config.channels.get(channel).is_some_and(|c| c.target.is_ok());
        if usable && !routed.channels.contains(channel) {
            routed.channels.push(channel.clone());
        }
    }
    routed
}

/// One event routed: the channels its routes chose (enabled ones), nothing about its call.
fn route_one(config: &Config, event: &Event) -> NewEvent {
    let ctx = if config.router.needs_context() { context(event) } else { Value::Null };
    let json = serde_json::to_string(event).expect("an Event always serialises");
    let mut routed = route_context(config, event.event_type, &event.call_id, &ctx, json);
    if routed.recent {
        let message =
            event.message.as_ref().map(|m| json!({"is_agent": m.is_agent, "message": m.message, "sent_at": m.sent_at}));
        let evaluation = (event.event_type == EventType::CallEnded).then(|| {
            let e = &event.evaluation;
            json!({"topic": e.topic, "user_sentiment": e.user_sentiment, "duration_minutes": e.duration_minutes})
        });
        let count = (event.event_type == EventType::CallEnded).then_some(event.messages.len());
        routed.shown = Some(shown(&event.user_name, &event.agent_id, message, evaluation, count, &event.call));
    }
    routed
}

/// What the call page shows of an event: the caller, the agent, the utterance (sender, text,
/// time), the summary's facts and transcript length, what the relay knows of the call; nothing
/// else (a compact row per event, not the event again).
fn shown(
    user_name: &Option<String>,
    agent_id: &Option<String>,
    message: Option<Value>,
    evaluation: Option<Value>,
    messages_count: Option<usize>,
    call: &Map<String, Value>,
) -> String {
    let mut v = json!({"user_name": user_name, "agent_id": agent_id});
    for (key, value) in
        [("message", message), ("evaluation", evaluation), ("messages_count", messages_count.map(Value::from))]
    {
        if let Some(value) = value {
            v[key] = value;
        }
    }
    if !call.is_empty() {
        v["call"] = Value::Object(call.clone());
    }
    v.to_string()
}

/// A held event (its normalised JSON, `context`) routed now, as [`route`] would have routed it
/// when it was accepted; `call` tells what was learned of its call meanwhile (the agent).
pub fn route_held(config: &Config, event_type: EventType, context: &Value, call: Option<CallNote>) -> NewEvent {
    let call_id = context.get("call_id").and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut routed = route_context(config, event_type, &call_id, context, context.to_string());
    routed.call = call;
    if routed.recent {
        let text = |key: &str| context.get(key).and_then(Value::as_str).map(str::to_owned);
        let message = context
            .get("message")
            .filter(|m| !m.is_null())
            .map(|m| json!({"is_agent": m.get("is_agent"), "message": m.get("message"), "sent_at": m.get("sent_at")}));
        let ended = event_type == EventType::CallEnded;
        let evaluation = context.get("evaluation").filter(|_| ended).map(|e| {
            json!({"topic": e.get("topic"), "user_sentiment": e.get("user_sentiment"), "duration_minutes": e.get("duration_minutes")})
        });
        let count = ended.then(|| context.get("messages").and_then(Value::as_array).map_or(0, Vec::len));
        let call = context.get("call").and_then(Value::as_object).cloned().unwrap_or_default();
        routed.shown = Some(shown(&text("user_name"), &text("agent_id"), message, evaluation, count, &call));
    }
    routed
}

fn route_context(config: &Config, event_type: EventType, call_id: &str, ctx: &Value, json: String) -> NewEvent {
    let (routes, routed) = config.router.route_named(event_type, ctx);
    if routed.is_empty() {
        telemetry::event_unrouted(event_type, call_id);
    }
    let channels = routed
        .into_iter()
        .filter(|name| match &config.channels[name].target {
            Ok(_) => true,
            Err(why) => {
                telemetry::channel_skipped(name, why, call_id);
                false
            }
        })
        .collect();
    NewEvent {
        call_id: call_id.to_owned(),
        event_type: event_type.as_str().to_owned(),
        event: json,
        channels,
        routes,
        recent: config.admin.enabled && !config.admin.keep_events.is_zero(),
        call: None,
        started: None,
        shown: None,
    }
}
