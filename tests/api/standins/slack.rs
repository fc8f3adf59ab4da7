//! Stand-ins for Slack: an incoming webhook, and the Web API's `chat.postMessage` and
//! `chat.update` for one workspace, answering as Slack documents them, with the messages they
//! hold (so a reply's `thread_ts` and an edit's `ts` must name a real message).
//!
//! Rules, and the page of Slack's documentation each comes from:
//! - Incoming webhooks (<https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks>):
//!   200 with the plain body `ok`; errors as plain strings (`invalid_payload`, `no_text`,
//!   `invalid_blocks` with 400).
//! - `chat.postMessage` (<https://docs.slack.dev/reference/methods/chat.postMessage>) answers
//!   `{"ok": true, "channel", "ts", "message": {…}}` where `message` is the whole message as
//!   saved, its blocks included (`shared/specs/slack-web-openapi-v2.json` lists all four as
//!   required): answers grow with the message. A reply (`thread_ts`) names a message of the
//!   channel; Slack's spec lists no error for one that is not, and a message that replies to
//!   nothing is lost to readers, so the stand-in refuses it (`thread_not_found`) rather than let
//!   a wrong `ts` pass unseen.
//! - `chat.update` (<https://docs.slack.dev/reference/methods/chat.update>) answers `{"ok": true,
//!   "channel", "ts", "text", "message": {…}}`; an unknown `ts` is `message_not_found`.
//! - Errors are HTTP 200 with `{"ok": false, "error": "…"}`; no token is `not_authed`, a wrong
//!   one `invalid_auth`, another channel `channel_not_found`
//!   (<https://docs.slack.dev/apis/web-api/#responses>).
//! - Limits: blocks 50 per message, a text object 1 to 3,000 characters (`invalid_blocks`;
//!   <https://docs.slack.dev/reference/block-kit/composition-objects/text-object>), `text` over
//!   40,000 characters `msg_too_long`, a message with neither text nor blocks `no_text`.
//!
//! Tests put failures in front of these answers with `answer_first`; whatever the stand-in
//! answers itself follows the rules above.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::SLACK_PATH;

/// The channel the app posts into.
pub const CHANNEL: &str = "C0123ABCD";

/// Why Slack would refuse a message body: blank or over-long text objects, too many blocks
/// (`invalid_blocks`), nothing to show (`no_text`), text over 40,000 characters (`msg_too_long`).
pub fn slack_refusal(body: &Value) -> Option<String> {
    fn walk(v: &Value) -> Option<String> {
        match v {
            Value::Object(m) => {
                let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
                if kind == "mrkdwn" || kind == "plain_text" {
                    let n = m.get("text").and_then(Value::as_str).map_or(0, |t| t.trim().chars().count());
                    if n == 0 || n > 3000 {
                        return Some(format!("invalid_blocks: a text object of {n} characters"));
                    }
                }
                m.values().find_map(walk)
            }
            Value::Array(items) => items.iter().find_map(walk),
            _ => None,
        }
    }
    let text = body.get("text").and_then(Value::as_str).unwrap_or("");
    let blocks = body.get("blocks").and_then(Value::as_array).cloned().unwrap_or_default();
    if text.trim().is_empty() && blocks.is_empty() {
        return Some("no_text".into());
    }
    if text.chars().count() > 40_000 {
        return Some("msg_too_long".into());
    }
    if blocks.len() > 50 {
        return Some("invalid_blocks: more than 50 blocks".into());
    }
    walk(body)
}

/// A Slack incoming webhook: `invalid_blocks`/`no_text` for what Slack refuses, else `ok`.
pub struct SlackWebhook;

impl Respond for SlackWebhook {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return ResponseTemplate::new(400).set_body_string("invalid_payload");
        };
        match slack_refusal(&body) {
            Some(why) => ResponseTemplate::new(400).set_body_string(why.split(':').next().unwrap_or("").to_owned()),
            None => ResponseTemplate::new(200).set_body_string("ok"),
        }
    }
}

/// One message the app posted, as it stands now.
#[derive(Debug, Clone)]
pub struct Message {
    /// Its `ts`.
    pub ts: String,
    /// The parent it replies to.
    pub thread_ts: Option<String>,
    /// The body as last posted or updated (`channel`, `ts` and the like removed).
    pub body: Value,
    /// How many `chat.update`s it took.
    pub updates: u32,
}

impl Message {
    /// Every string it shows, joined by new lines.
    pub fn text(&self) -> String {
        crate::helpers::strings(&self.body).join("\n")
    }
}

#[derive(Default)]
struct State {
    next: u64,
    messages: Vec<Message>,
    first: VecDeque<ResponseTemplate>,
    /// Every request: (method, body).
    requests: Vec<(String, Value)>,
}

/// Slack's Web API for one workspace and channel; clones share it.
#[derive(Clone, Default)]
pub struct SlackApi(Arc<Mutex<State>>);

impl SlackApi {
    /// Mounts it at `/api/chat.postMessage` and `/api/chat.update` on `server`.
    pub async fn mount(server: &MockServer) -> SlackApi {
        let standin = SlackApi::default();
        Mock::given(method("POST"))
            .and(path_regex(r"^/api/chat\.(postMessage|update)$"))
            .respond_with(standin.clone())
            .mount(server)
            .await;
        standin
    }

    /// Answers these first, one per request, before answering by the rules again.
    pub fn answer_first(&self, answers: impl IntoIterator<Item = ResponseTemplate>) {
        self.0.lock().unwrap().first.extend(answers);
    }

    /// Every message posted, in order, as it stands now.
    pub fn messages(&self) -> Vec<Message> {
        self.0.lock().unwrap().messages.clone()
    }

    /// Every request answered: (method name, body).
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.0.lock().unwrap().requests.clone()
    }

    /// The `ts` the n-th posted message gets (1-based).
    pub fn ts(n: u64) -> String {
        format!("1700000000.{n:06}")
    }
}

fn slack_error(error: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": error}))
}

/// The message object Slack echoes: the saved message with the bot's identity and each block's id.
fn message_object(m: &Message) -> Value {
    let mut blocks = m.body.get("blocks").cloned().unwrap_or(json!([]));
    for (i, b) in blocks.as_array_mut().into_iter().flatten().enumerate() {
        b["block_id"] = json!(format!("b{i:03}x"));
    }
    let mut object = json!({
        "user": "U0BOT00001",
        "type": "message",
        "ts": m.ts,
        "bot_id": "B0BOT00001",
        "app_id": "A0APP00001",
        "text": m.body.get("text").cloned().unwrap_or(json!("")),
        "team": "T0TEAM0001",
        "bot_profile": {"id": "B0BOT00001", "app_id": "A0APP00001", "name": "Call Relay", "deleted": false,
                        "icons": {"image_36": "https://a.slack-edge.com/80588/img/plugins/app/bot_36.png"},
                        "updated": 1700000000, "team_id": "T0TEAM0001"},
        "blocks": blocks,
    });
    if let Some(t) = &m.thread_ts {
        object["thread_ts"] = json!(t);
        object["parent_user_id"] = json!("U0BOT00001");
    }
    object
}

impl Respond for SlackApi {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let method = request.url.path().rsplit('/').next().unwrap_or("").to_owned();
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        s.requests.push((method.clone(), body.clone()));
        if let Some(first) = s.first.pop_front() {
            return first;
        }
        let auth = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        match auth.strip_prefix("Bearer ") {
            None => return slack_error("not_authed"),
            Some(t) if !t.starts_with("xoxb-") => return slack_error("invalid_auth"),
            Some(_) => {}
        }
        if !body.is_object() {
            return slack_error("invalid_json");
        }
        if body["channel"] != CHANNEL {
            return slack_error("channel_not_found");
        }
        if let Some(why) = slack_refusal(&body) {
            return slack_error(why.split(':').next().unwrap_or(""));
        }
        let mut saved = body.clone();
        for key in ["channel", "ts", "thread_ts", "reply_broadcast"] {
            saved.as_object_mut().unwrap().remove(key);
        }
        match method.as_str() {
            "chat.postMessage" => {
                let thread_ts = body.get("thread_ts").and_then(Value::as_str).map(str::to_owned);
                if let Some(t) = &thread_ts {
                    if !s.messages.iter().any(|m| &m.ts == t && m.thread_ts.is_none()) {
                        return slack_error("thread_not_found");
                    }
                }
                s.next += 1;
                let message = Message { ts: SlackApi::ts(s.next), thread_ts, body: saved, updates: 0 };
                s.messages.push(message.clone());
                ResponseTemplate::new(200).set_body_json(
                    json!({"ok": true, "channel": CHANNEL, "ts": message.ts, "message": message_object(&message)}),
                )
            }
            _ => {
                let ts = body.get("ts").and_then(Value::as_str).unwrap_or("");
                let Some(message) = s.messages.iter_mut().find(|m| m.ts == ts) else {
                    return slack_error("message_not_found");
                };
                message.body = saved;
                message.updates += 1;
                let object = message_object(message);
                ResponseTemplate::new(200).set_body_json(
                    json!({"ok": true, "channel": CHANNEL, "ts": ts, "text": object["text"], "message": object}),
                )
            }
        }
    }
}

/// Mounts the incoming-webhook stand-in at [`SLACK_PATH`] and the Web API beside it on `server`.
pub async fn mount(server: &MockServer) -> SlackApi {
    Mock::given(method("POST")).and(path(SLACK_PATH)).respond_with(SlackWebhook).mount(server).await;
    SlackApi::mount(server).await
}
