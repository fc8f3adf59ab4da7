//! A stand-in for a Google Chat space's incoming webhook, answering as Google documents it.
//!
//! - `POST …/v1/spaces/SPACE/messages?key=…&token=…` with `text` and/or `cardsV2` answers 200 with
//!   the whole Message resource: `name`, `sender`, `createTime`, `text`, `cardsV2`, `thread`
//!   (`name`, and the `threadKey` asked for), `space`
//!   (<https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages#Message>).
//! - A `thread.threadKey` with `messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD` replies in
//!   the thread of that key, or starts it; without the option the key is ignored and the message
//!   starts a thread of its own (<https://developers.google.com/workspace/chat/quickstart/webhooks>).
//! - A wrong `key` or `token` is 403 `PERMISSION_DENIED`; a message over 32,000 bytes or with
//!   neither `text` nor `cardsV2` is 400 `INVALID_ARGUMENT`; errors are
//!   `{"error": {"code", "message", "status"}}` (<https://cloud.google.com/apis/design/errors>).
//! - `<users/all>` or `<users/ID>` in `text` mentions; [`GoogleChat::mentions`] counts them.
//!
//! Tests put failures in front of these answers with [`GoogleChat::answer_first`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The space's messages path.
pub const PATH: &str = "/v1/spaces/AAAAspace/messages";

#[derive(Default)]
struct State {
    messages: Vec<(String, Value)>,
    threads: BTreeMap<String, String>,
    first: VecDeque<ResponseTemplate>,
    requests: usize,
    mentions: usize,
}

/// The stand-in; clones share one space.
#[derive(Clone, Default)]
pub struct GoogleChat(Arc<Mutex<State>>);

impl GoogleChat {
    /// Mounts it at [`PATH`] on `server`.
    pub async fn mount(server: &MockServer) -> GoogleChat {
        let standin = GoogleChat::default();
        Mock::given(method("POST")).and(path(PATH)).respond_with(standin.clone()).mount(server).await;
        standin
    }

    /// Answers these first, one per request, before answering by the rules again.
    pub fn answer_first(&self, answers: impl IntoIterator<Item = ResponseTemplate>) {
        self.0.lock().unwrap().first.extend(answers);
    }

    /// The messages posted, in order: (thread name, body).
    pub fn messages(&self) -> Vec<(String, Value)> {
        self.0.lock().unwrap().messages.clone()
    }

    /// Requests answered, refused ones included.
    pub fn requests(&self) -> usize {
        self.0.lock().unwrap().requests
    }

    /// Mentions the posted texts made.
    pub fn mentions(&self) -> usize {
        self.0.lock().unwrap().mentions
    }
}

fn error(code: u16, status: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(code).set_body_json(json!({"error": {"code": code, "message": message, "status": status}}))
}

impl Respond for GoogleChat {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        s.requests += 1;
        if let Some(first) = s.first.pop_front() {
            return first;
        }
        let query = |k: &str| request.url.query_pairs().find(|(key, _)| key == k).map(|(_, v)| v.into_owned());
        if query("key").as_deref() != Some("GcKeY") || query("token").as_deref() != Some("GcToKeNsEcReT") {
            return error(403, "PERMISSION_DENIED", "The caller does not have permission");
        }
        if request.body.len() > 32_000 {
            return error(400, "INVALID_ARGUMENT", "Message too long: 32,000 bytes at most.");
        }
        let Ok(mut body) = serde_json::from_slice::<Value>(&request.body) else {
            return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
        };
        if body.get("text").is_none() && body.get("cardsV2").is_none() {
            return error(400, "INVALID_ARGUMENT", "Message cannot be empty.");
        }
        let text = body["text"].as_str().unwrap_or("").to_owned();
        s.mentions += text.matches("<users/").count();
        let replying = query("messageReplyOption").as_deref() == Some("REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD");
        let n = s.messages.len() + 1;
        let key = body.pointer("/thread/threadKey").and_then(Value::as_str).map(str::to_owned);
        let thread = match (&key, replying) {
            (Some(k), true) => {
                s.threads.entry(k.clone()).or_insert_with(|| format!("spaces/AAAAspace/threads/t{n}")).clone()
            }
            _ => format!("spaces/AAAAspace/threads/t{n}"),
        };
        let name = format!("spaces/AAAAspace/messages/m{n}");
        s.messages.push((thread.clone(), body.clone()));
        body["name"] = json!(name);
        body["sender"] = json!({"name": "users/114022495153014004089", "displayName": "callrelay", "type": "BOT"});
        body["createTime"] = json!("2026-12-04T10:00:00.000000Z");
        body["thread"] = match key {
            Some(k) if replying => json!({"name": thread, "threadKey": k}),
            _ => json!({"name": thread}),
        };
        body["space"] =
            json!({"name": "spaces/AAAAspace", "type": "ROOM", "spaceType": "SPACE", "displayName": "Calls"});
        body["argumentText"] = json!(text);
        ResponseTemplate::new(200).set_body_json(body)
    }
}
