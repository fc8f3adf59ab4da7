//! Beyond Presence payloads, normalised into one typed [`Event`] that routes and templates see.
//!
//! Beyond Presence's JSON is looser than its documentation: `sender` is `"user"` or `"ai"`,
//! timestamps may lack a zone, numbers may arrive as strings, and most fields may be missing or
//! null. [`parse`] accepts all of that and rejects only what cannot be relayed.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// The event types the relay routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// One live utterance during a call.
    Message,
    /// The end of a call, with evaluation and transcript.
    CallEnded,
    /// Sent by the dashboard when a webhook URL is saved.
    Test,
    /// Made by the relay from the first event it sees of a call (Beyond Presence sends none).
    CallStarted,
    /// Made by the relay when a call had no event for `calls.end_after` and no `call_ended`.
    CallTimedOut,
}

impl EventType {
    /// Every routable type.
    pub const ALL: [EventType; 5] =
        [EventType::Message, EventType::CallEnded, EventType::Test, EventType::CallStarted, EventType::CallTimedOut];

    /// The types Beyond Presence sends; the others are the relay's own (a request claiming one
    /// of those is a type this relay does not take, answered 200 and not routed).
    pub const SENT: [EventType; 3] = [EventType::Message, EventType::CallEnded, EventType::Test];

    /// The name (`message`, `call_ended`, `test`, `call_started`, `call_timed_out`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Message => "message",
            EventType::CallEnded => "call_ended",
            EventType::Test => "test",
            EventType::CallStarted => "call_started",
            EventType::CallTimedOut => "call_timed_out",
        }
    }

    /// The type for a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether it ends its call (`call_ended`, `call_timed_out`): its thread's parent shows the
    /// outcome, its live transcript is closed.
    pub fn ends_call(self) -> bool {
        matches!(self, EventType::CallEnded | EventType::CallTimedOut)
    }
}

/// Who spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    /// The human caller (`"user"` on the wire).
    User,
    /// The AI agent (`"ai"`, or anything that is not `"user"`).
    Agent,
}

/// One utterance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Utterance {
    /// `"user"` or `"agent"`.
    pub sender: Sender,
    /// True when the agent spoke; handy in `{{#if}}`.
    pub is_agent: bool,
    /// What was said.
    pub message: String,
    /// When it was said, in UTC (RFC 3339), or null when absent or unreadable.
    pub sent_at: Option<DateTime<Utc>>,
}

/// `call_ended`'s evaluation. Every field may be null.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evaluation {
    /// What the call was about.
    pub topic: Option<String>,
    /// The caller's sentiment, lower-cased (`positive`, `neutral`, `negative`, …).
    pub user_sentiment: Option<String>,
    /// Call length in minutes (numeric strings are converted).
    pub duration_minutes: Option<f64>,
    /// Number of messages (numeric strings are converted).
    pub messages_count: Option<u64>,
    /// Any other evaluation fields, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A normalised event. Serialised, it is the template context and what route `match` paths address.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// `message`, `call_ended` or `test`.
    pub event_type: EventType,
    /// The call's id (empty for `test`).
    pub call_id: String,
    /// When the relay accepted the event (millisecond precision).
    pub received_at: DateTime<Utc>,
    /// The caller's name: `user_name`, else `call_data.userName`; null when neither is given.
    pub user_name: Option<String>,
    /// The agent's id from `call_data.agentId`, or null.
    pub agent_id: Option<String>,
    /// `call_data` as sent (`{}` when missing).
    pub call_data: Map<String, Value>,
    /// The utterance of a `message` event; null otherwise.
    pub message: Option<Utterance>,
    /// The transcript of a `call_ended` event (empty otherwise).
    pub messages: Vec<Utterance>,
    /// The evaluation of a `call_ended` event (all null otherwise).
    pub evaluation: Evaluation,
    /// For `test` events, the dashboard's text, if it sent one.
    pub test_message: Option<String>,
    /// What the relay knows of the call beyond this event (`{}` when nothing): for
    /// `call_timed_out`, `started_at`, `last_event_at` (RFC 3339), `utterances` and
    /// `silent_minutes`.
    pub call: Map<String, Value>,
}

impl Event {
    /// The `call_started` event the relay makes from `self`, the first event it saw of its call:
    /// the call's caller, agent and `call_data`, at the time `self` was accepted.
    pub fn started(&self) -> Event {
        Event {
            event_type: EventType::CallStarted,
            call_id: self.call_id.clone(),
            received_at: self.received_at,
            user_name: self.user_name.clone(),
            agent_id: self.agent_id.clone(),
            call_data: self.call_data.clone(),
            message: None,
            messages: Vec::new(),
            evaluation: Evaluation::default(),
            test_message: None,
            call: self.call.clone(),
        }
    }
}

/// What a request body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A routable event.
    Event(Box<Event>),
    /// A well-formed event of a type this version does not know; answered 200, not routed.
    Unknown(String),
}

/// Why a body was rejected (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON (or not UTF-8).
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    /// No string `event_type`.
    #[error("the body has no string field `event_type`")]
    NoEventType,
    /// A required field is missing.
    #[error("a `{event_type}` event needs `{field}`")]
    Missing {
        /// The event's type.
        event_type: &'static str,
        /// The dotted path of the field.
        field: &'static str,
    },
}

/// Parses and normalises one request body, as Beyond Presence posts it: a type only the relay
/// makes (`call_started`, `call_timed_out`) is one this relay does not take from outside.
pub fn parse(body: &[u8], received_at: DateTime<Utc>) -> Result<Incoming, ParseError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    read(&value, received_at, &EventType::SENT)
}

/// Normalises an already parsed body of any type, the relay's own included (with their `call`
/// object): for samples, previews and `render --event`, never for what the webhook receives.
pub fn from_value(value: &Value, received_at: DateTime<Utc>) -> Result<Incoming, ParseError> {
    read(value, received_at, &EventType::ALL)
}

fn read(value: &Value, received_at: DateTime<Utc>, known: &[EventType]) -> Result<Incoming, ParseError> {
    let name = value.get("event_type").and_then(Value::as_str).ok_or(ParseError::NoEventType)?;
    let Some(event_type) = known.iter().copied().find(|t| t.as_str() == name) else {
        return Ok(Incoming::Unknown(name.to_owned()));
    };
    let call_data = value.get("call_data").and_then(Value::as_object).cloned().unwrap_or_default();
    let call_id = text(value.get("call_id"));
    let mut event = Event {
        event_type,
        call_id: call_id.clone().unwrap_or_default(),
        received_at: received_at.trunc_subsecs(3),
        user_name: text(value.get("user_name")).or_else(|| text(call_data.get("userName"))),
        agent_id: text(call_data.get("agentId")),
        call_data,
        message: None,
        messages: Vec::new(),
        evaluation: Evaluation::default(),
        test_message: None,
        call: Map::new(),
    };
    let missing = |field| ParseError::Missing { event_type: event_type.as_str(), field };
    match event_type {
        EventType::Message => {
            call_id.ok_or(missing("call_id"))?;
            let utterance = value.get("message").and_then(utterance).ok_or(missing("message.message"))?;
            event.message = Some(utterance);
        }
        EventType::CallEnded => {
            call_id.ok_or(missing("call_id"))?;
            if let Some(items) = value.get("messages").and_then(Value::as_array) {
                event.messages = items.iter().filter_map(utterance).collect();
            }
            if let Some(eval) = value.get("evaluation").and_then(Value::as_object) {
                event.evaluation = evaluation(eval);
            }
        }
        EventType::Test => {
            event.test_message = text(value.get("message"));
        }
        EventType::CallStarted | EventType::CallTimedOut => {
            call_id.ok_or(missing("call_id"))?;
            event.call = value.get("call").and_then(Value::as_object).cloned().unwrap_or_default();
        }
    }
    Ok(Incoming::Event(Box::new(event)))
}

fn utterance(v: &Value) -> Option<Utterance> {
    let message = v.get("message").and_then(Value::as_str)?.to_owned();
    let sender = match v.get("sender").and_then(Value::as_str) {
        Some("user") => Sender::User,
        _ => Sender::Agent,
    };
    let sent_at = v.get("sent_at").and_then(Value::as_str).and_then(parse_time);
    Some(Utterance { sender, is_agent: sender == Sender::Agent, message, sent_at })
}

fn evaluation(map: &Map<String, Value>) -> Evaluation {
    let mut other = map.clone();
    for key in ["topic", "user_sentiment", "duration_minutes", "messages_count"] {
        other.remove(key);
    }
    Evaluation {
        topic: text(map.get("topic")),
        user_sentiment: text(map.get("user_sentiment")).map(|s| s.trim().to_lowercase()),
        duration_minutes: number(map.get("duration_minutes")).filter(|n| n.is_finite() && *n >= 0.0),
        messages_count: number(map.get("messages_count")).filter(|n| *n >= 0.0).map(|n| n.round() as u64),
        other,
    }
}

/// A non-empty string, or a number written as text.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number, or a string holding one.
fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The key under which an identical event is recognised: type, call_id, and for `message` the
/// utterance's `sent_at` and text; for other types the whole body. A `message` without `sent_at`
/// has none: the same words said twice in a call could not be told from a resend, and dropping
/// real speech is worse than a repeated post.
///
/// Shaped for the store's index: `event:TIME:CALL:DIGEST`, (for a `message`) its `sent_at` in
/// fixed-width microseconds, then the call id and a 128-bit digest of the rest, so keys sort by
/// the time they were said and every live call's new keys land at the index's end: a commit
/// writes one or two of its pages. Keyed by call first, each of a hundred live calls wrote its
/// own page per commit (half of all pages written), and a random key was worse still (measured:
/// `benches/ANALYSIS.md`).
pub fn dedup_key(event: &Event, body: &[u8]) -> Option<String> {
    use sha2::{Digest, Sha256};
    use std::fmt::Write as _;
    let mut h = Sha256::new();
    h.update(event.event_type.as_str());
    h.update([0]);
    h.update(&event.call_id);
    h.update([0]);
    let at = match &event.message {
        Some(m) if event.event_type == EventType::Message => {
            let sent_at = m.sent_at?;
            h.update(sent_at.to_rfc3339());
            h.update([0]);
            h.update(&m.message);
            sent_at.timestamp_micros()
        }
        _ => {
            h.update(body);
            0
        }
    };
    let mut key = String::with_capacity(event.call_id.len() + 64);
    // Offset so that times before 1970 still sort (as 20 digits, never negative).
    let _ = write!(key, "event:{:020}:{}:", at.saturating_add(i64::MAX / 2), event.call_id);
    for b in &h.finalize()[..16] {
        let _ = write!(key, "{b:02x}");
    }
    Some(key)
}

/// RFC 3339, or ISO 8601 without a zone (taken as UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2025-01-01T00:00:00Z".parse().unwrap()
    }

    fn event(v: Value) -> Event {
        match from_value(&v, now()).unwrap() {
            Incoming::Event(e) => *e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn naive_timestamps_are_utc_and_rfc3339_keeps_its_offset() {
        assert_eq!(parse_time("2025-10-28T10:31:25.159564").unwrap().to_rfc3339(), "2025-10-28T10:31:25.159564+00:00");
        assert_eq!(parse_time("2024-01-15T10:30:00Z").unwrap().to_rfc3339(), "2024-01-15T10:30:00+00:00");
        assert_eq!(parse_time("2024-01-15T12:30:00+02:00").unwrap().to_rfc3339(), "2024-01-15T10:30:00+00:00");
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn ai_and_unknown_senders_are_the_agent() {
        for s in ["ai", "assistant", "AI"] {
            let e = event(json!({"event_type":"message","call_id":"c","message":{"sender":s,"message":"hi"}}));
            assert_eq!(e.message.unwrap().sender, Sender::Agent);
        }
        let e = event(json!({"event_type":"message","call_id":"c","message":{"sender":"user","message":"hi"}}));
        assert!(!e.message.unwrap().is_agent);
    }

    #[test]
    fn numeric_strings_become_numbers_and_junk_becomes_null() {
        let e = event(json!({"event_type":"call_ended","call_id":"c","evaluation":{
            "duration_minutes":"5.5","messages_count":"12","user_sentiment":" Negative ","score":3}}));
        assert_eq!(e.evaluation.duration_minutes, Some(5.5));
        assert_eq!(e.evaluation.messages_count, Some(12));
        assert_eq!(e.evaluation.user_sentiment.as_deref(), Some("negative"));
        assert_eq!(e.evaluation.other["score"], 3);
        let e = event(
            json!({"event_type":"call_ended","call_id":"c","evaluation":{"duration_minutes":"soon","messages_count":null}}),
        );
        assert_eq!((e.evaluation.duration_minutes, e.evaluation.messages_count), (None, None));
    }

    #[test]
    fn user_name_falls_back_to_call_data() {
        let e = event(
            json!({"event_type":"call_ended","call_id":"c","user_name":null,"call_data":{"userName":"Ann","agentId":"a1"}}),
        );
        assert_eq!(e.user_name.as_deref(), Some("Ann"));
        assert_eq!(e.agent_id.as_deref(), Some("a1"));
        let e = event(json!({"event_type":"call_ended","call_id":"c"}));
        assert_eq!(e.user_name, None);
    }

    #[test]
    fn dedup_keys_tell_resends_from_repeats() {
        let msg = |text: &str, at: Option<&str>| {
            let mut v = json!({"event_type":"message","call_id":"c","message":{"sender":"user","message":text}});
            if let Some(at) = at {
                v["message"]["sent_at"] = json!(at);
            }
            let body = serde_json::to_vec(&v).unwrap();
            dedup_key(&event(v), &body)
        };
        let a = msg("yes", Some("2024-01-15T10:30:00Z"));
        assert!(a.is_some());
        assert_eq!(a, msg("yes", Some("2024-01-15T10:30:00Z")), "a resend");
        assert_ne!(a, msg("yes", Some("2024-01-15T10:30:09Z")), "the same word said again");
        assert_eq!(msg("yes", None), None, "no sent_at: never treated as a duplicate");
    }

    #[test]
    fn required_fields_and_unknown_types() {
        let err = |v: Value| from_value(&v, now()).unwrap_err().to_string();
        assert_eq!(err(json!({"call_id":"c"})), "the body has no string field `event_type`");
        assert_eq!(err(json!({"event_type":7})), "the body has no string field `event_type`");
        assert!(err(json!({"event_type":"message","message":{"message":"x"}})).contains("`call_id`"));
        assert!(err(json!({"event_type":"message","call_id":"c","message":{"sender":"user"}}))
            .contains("`message.message`"));
        assert!(err(json!({"event_type":"call_ended"})).contains("`call_id`"));
        assert_eq!(
            parse(br#"{"event_type":"call_started"}"#, now()).unwrap(),
            Incoming::Unknown("call_started".into())
        );
        assert_eq!(
            parse(br#"{"event_type":"call_timed_out","call_id":"c"}"#, now()).unwrap(),
            Incoming::Unknown("call_timed_out".into()),
            "the relay's own types are never taken from outside"
        );
        assert!(err(json!({"event_type":"call_started"})).contains("`call_id`"), "a sample of one needs its call");
        assert!(matches!(parse(b"{not json", now()), Err(ParseError::Json(_))));
        assert!(matches!(parse(b"\"\xff\"", now()), Err(ParseError::Json(_))));
    }
}
