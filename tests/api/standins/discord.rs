//! A stand-in for one Discord webhook, answering as Discord documents it, with the state that makes
//! its answers right: the webhook's channel (a text channel or a forum), the threads in it and
//! whether they are archived, and every message the webhook posted, as edited since.
//!
//! Rules, and the page of Discord's documentation each comes from:
//! - Execute webhook (<https://discord.com/developers/docs/resources/webhook#execute-webhook>):
//!   `?wait=true` answers 200 with the whole message object (`components.schemas.MessageResponse`
//!   in `shared/specs/discord-openapi.json`: content, embeds, author, timestamps …); without it,
//!   204 and no body. `channel_id` is the thread's id when the post went into a thread, the
//!   webhook's channel otherwise.
//! - `thread_id` "sends a message to the specified thread within a webhook's channel. The thread
//!   will automatically be unarchived": an id that is not a thread of this channel is refused
//!   400 `{"message": "Unknown Channel", "code": 10003}`
//!   (<https://discord.com/developers/docs/topics/opcodes-and-status-codes#json>).
//! - `thread_name` creates a thread, in forum and media channels only; elsewhere 400 code 220003.
//!   A forum post needs `thread_name` or `thread_id` (220001). A forum thread's id is its first
//!   message's id (<https://discord.com/developers/docs/topics/threads#forums>).
//! - Edit webhook message (<https://discord.com/developers/docs/resources/webhook#edit-webhook-message>):
//!   `thread_id` names the thread the message is in; a message that is not where the request
//!   says (or not the webhook's) is 404 `Unknown Message` (10008); an edit in an archived thread
//!   is 400 `Thread is archived` (50083) — only a new post unarchives it. Every answer is the
//!   whole, edited message.
//! - A locked thread stays archived: only members who may manage threads unarchive it
//!   (<https://discord.com/developers/docs/topics/threads#archiving-and-unarchiving-threads>), so
//!   the webhook's posts into it are refused with 50083 too.
//! - Limits (<https://discord.com/developers/docs/resources/message#embed-object-embed-limits>):
//!   content 2,000 characters, 10 embeds, 6,000 characters across them, and every per-field
//!   limit of Discord's OpenAPI schema (`tests/fixtures/`); an empty message is 50006, blank
//!   embed text 50035.
//! - A wrong token is 401 `Invalid Webhook Token` (50027); a wrong webhook id 404 `Unknown
//!   Webhook` (10015).
//! - Rate limits (<https://discord.com/developers/docs/topics/rate-limits>), when a test turns
//!   them on with [`Discord::rate_limited`]: 5 posts per 2 s per webhook, `X-RateLimit-*` headers
//!   on every answer, and 429 with `{"message", "retry_after", "global"}` beyond. Off by default so
//!   that tests about something else do not wait on Discord's budget.
//!
//! Tests put failures in front of these answers with [`Discord::answer_first`] and
//! [`Discord::answer_at`]; whatever the
//! stand-in answers itself follows the rules above.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{DISCORD_TOKEN, DISCORD_WEBHOOK_ID};

/// The webhook's own channel.
pub const CHANNEL_ID: &str = "1100000000000000001";

/// One message the webhook posted, as it stands now.
#[derive(Debug, Clone)]
pub struct Message {
    /// Its id.
    pub id: String,
    /// Where it is: a thread's id, or [`CHANNEL_ID`].
    pub channel_id: String,
    /// `content` and `embeds`, as last posted or edited.
    pub body: Value,
    /// How many edits it took.
    pub edits: u32,
}

impl Message {
    /// Every string it shows (content, embed texts), joined by new lines.
    pub fn text(&self) -> String {
        crate::helpers::strings(&self.body).join("\n")
    }
}

#[derive(Default)]
struct State {
    forum: bool,
    next_id: u64,
    /// Thread id → (archived, locked).
    threads: BTreeMap<String, (bool, bool)>,
    /// Threads whose name a test gave (id → name), in order of creation.
    thread_names: Vec<(String, String)>,
    messages: Vec<Message>,
    first: VecDeque<ResponseTemplate>,
    /// Answers for given requests (1-based), ahead of the rules.
    at: BTreeMap<usize, ResponseTemplate>,
    limit: Option<(usize, Duration)>,
    sent: VecDeque<Instant>,
    /// Every request: (method, thread_id query, JSON body).
    requests: Vec<(String, Option<String>, Value)>,
    /// When each request arrived.
    arrivals: Vec<Instant>,
    /// 429s answered for the budget.
    limited: u32,
    /// The webhook was deleted.
    deleted: bool,
}

/// The stand-in; clones share one webhook.
#[derive(Clone, Default)]
pub struct Discord(Arc<Mutex<State>>);

impl Discord {
    /// A webhook of a text channel, mounted on `server` (at `helpers::DISCORD_PATH` and its messages).
    pub async fn mount(server: &MockServer) -> Discord {
        let standin = Discord::default();
        Mock::given(path_regex(r"^/api/v10/webhooks/[^/]+/[^/]+(/messages/[^/]+)?$"))
            .respond_with(standin.clone())
            .mount(server)
            .await;
        standin
    }

    /// Makes the webhook's channel a forum.
    pub fn forum(&self) -> &Self {
        self.0.lock().unwrap().forum = true;
        self
    }

    /// Turns on Discord's per-webhook budget: 5 posts per 2 s.
    pub fn rate_limited(&self) -> &Self {
        self.0.lock().unwrap().limit = Some((5, Duration::from_secs(2)));
        self
    }

    /// Answers these first, one per request, before answering by the rules again.
    pub fn answer_first(&self, answers: impl IntoIterator<Item = ResponseTemplate>) {
        self.0.lock().unwrap().first.extend(answers);
    }

    /// Answers the `n`-th request (counting from 1, every request so far included) with `answer`.
    pub fn answer_at(&self, n: usize, answer: ResponseTemplate) {
        self.0.lock().unwrap().at.insert(n, answer);
    }

    /// A moderator archives a thread (a post into it unarchives it).
    pub fn archive(&self, thread: &str) {
        self.set_thread(thread, (true, false));
    }

    /// A moderator archives and locks a thread (the webhook cannot unarchive it).
    pub fn lock(&self, thread: &str) {
        self.set_thread(thread, (true, true));
    }

    fn set_thread(&self, thread: &str, state: (bool, bool)) {
        let mut s = self.0.lock().unwrap();
        assert!(s.threads.contains_key(thread), "no thread {thread}");
        s.threads.insert(thread.to_owned(), state);
    }

    /// Every message the webhook posted, in order, as it stands now.
    pub fn messages(&self) -> Vec<Message> {
        self.0.lock().unwrap().messages.clone()
    }

    /// The threads created, in order: (id, name).
    pub fn threads(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().thread_names.clone()
    }

    /// Someone deletes the webhook in Discord.
    pub fn delete(&self) {
        self.0.lock().unwrap().deleted = true;
    }

    /// When each request arrived.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.0.lock().unwrap().arrivals.clone()
    }

    /// How many requests the budget refused (429).
    pub fn limited(&self) -> u32 {
        self.0.lock().unwrap().limited
    }

    /// Every request the stand-in answered: (method, `thread_id`, body).
    pub fn requests(&self) -> Vec<(String, Option<String>, Value)> {
        self.0.lock().unwrap().requests.clone()
    }
}

/// An answer before it is sent: status and JSON body (`Null`: none).
type Reply = (u16, Value);

fn error(status: u16, code: u32, message: &str) -> Reply {
    (status, json!({"message": message, "code": code}))
}

/// Discord's validation: the first rule a body breaks, as Discord answers it.
fn refusal(body: &Value) -> Option<Reply> {
    if let Some(why) = crate::standins::discord_refusal(body) {
        let code = if why.starts_with("50006") { 50006 } else { 50035 };
        return Some(error(400, code, &why));
    }
    let content = body.get("content").and_then(Value::as_str).unwrap_or("");
    let embeds = body.get("embeds").and_then(Value::as_array).cloned().unwrap_or_default();
    let total: usize = embeds.iter().map(callrelay::platforms::discord::embed_chars).sum();
    if content.chars().count() > 2000 || embeds.len() > 10 || total > 6000 {
        return Some(error(400, 50035, "Invalid Form Body"));
    }
    // Every per-field limit of Discord's own schema (titles, fields, usernames, …).
    if let Some(first) = crate::helpers::discord_schema_errors(body).into_iter().next() {
        return Some(error(400, 50035, &format!("Invalid Form Body ({first})")));
    }
    None
}

impl State {
    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("{}", 1_200_000_000_000_000_000u64 + self.next_id)
    }

    /// The budget's headers, and whether this request is over it.
    fn pace(&mut self) -> (Vec<(&'static str, String)>, Option<f64>) {
        let Some((n, window)) = self.limit else { return (Vec::new(), None) };
        let now = Instant::now();
        while self.sent.front().is_some_and(|t| now.duration_since(*t) >= window) {
            self.sent.pop_front();
        }
        let reset_after = self.sent.front().map_or(window, |t| window.saturating_sub(now.duration_since(*t)));
        if self.sent.len() >= n {
            return (Vec::new(), Some(reset_after.as_secs_f64()));
        }
        self.sent.push_back(now);
        let headers = vec![
            ("x-ratelimit-limit", n.to_string()),
            ("x-ratelimit-remaining", (n - self.sent.len()).to_string()),
            ("x-ratelimit-reset-after", format!("{:.3}", reset_after.as_secs_f64())),
            ("x-ratelimit-bucket", "standin".to_owned()),
        ];
        (headers, None)
    }

    fn post(&mut self, wait: bool, thread_id: Option<String>, mut body: Value) -> Reply {
        if let Some(refused) = refusal(&body) {
            return refused;
        }
        let thread_name = body.as_object_mut().and_then(|m| m.remove("thread_name"));
        let channel_id = match (thread_id, thread_name) {
            (Some(_), Some(_)) => return error(400, 50035, "Invalid Form Body"),
            (Some(t), None) => match self.threads.get(&t) {
                None => return error(400, 10003, "Unknown Channel"),
                Some((true, true)) => return error(400, 50083, "Thread is archived"),
                Some(_) => {
                    self.threads.insert(t.clone(), (false, false)); // posting unarchives
                    t
                }
            },
            (None, Some(name)) if self.forum => {
                let id = self.id();
                self.threads.insert(id.clone(), (false, false));
                self.thread_names.push((id.clone(), name.as_str().unwrap_or("").to_owned()));
                self.next_id -= 1; // the thread's first message has the thread's id
                id
            }
            (None, Some(_)) => return error(400, 220003, "Webhooks can only create threads in forum channels"),
            (None, None) if self.forum => {
                return error(400, 220001, "Webhooks posted to forum channels must have a thread_name or thread_id")
            }
            (None, None) => CHANNEL_ID.to_owned(),
        };
        let id = self.id();
        let message = Message { id, channel_id, body, edits: 0 };
        self.messages.push(message.clone());
        if !wait {
            return (204, Value::Null);
        }
        (200, message_object(&message))
    }

    fn edit(&mut self, message_id: &str, thread_id: Option<String>, body: Value) -> Reply {
        if let Some(refused) = refusal(&body) {
            return refused;
        }
        if let Some(t) = &thread_id {
            match self.threads.get(t) {
                None => return error(400, 10003, "Unknown Channel"),
                Some((true, _)) => return error(400, 50083, "Thread is archived"),
                Some(_) => {}
            }
        }
        let place = thread_id.unwrap_or_else(|| CHANNEL_ID.to_owned());
        let Some(message) = self.messages.iter_mut().find(|m| m.id == message_id && m.channel_id == place) else {
            return error(404, 10008, "Unknown Message");
        };
        for key in ["content", "embeds"] {
            if let Some(v) = body.get(key) {
                message.body[key] = v.clone();
            }
        }
        message.edits += 1;
        let mut object = message_object(message);
        object["edited_timestamp"] = json!("2026-12-04T10:00:01.000000+00:00");
        (200, object)
    }
}

/// The message object Discord answers with.
fn message_object(m: &Message) -> Value {
    json!({
        "type": 0,
        "content": m.body.get("content").cloned().unwrap_or(json!("")),
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": m.body.get("embeds").cloned().unwrap_or(json!([])).as_array().unwrap_or(&vec![]).iter()
            .map(|e| { let mut e = e.clone(); e["type"] = json!("rich"); e["content_scan_version"] = json!(0); e })
            .collect::<Vec<_>>(),
        "timestamp": "2026-12-04T10:00:00.000000+00:00",
        "edited_timestamp": null,
        "flags": 0,
        "components": [],
        "id": m.id,
        "channel_id": m.channel_id,
        "author": {"id": DISCORD_WEBHOOK_ID, "username": m.body.get("username").cloned().unwrap_or(json!("Call Relay")),
                   "avatar": null, "discriminator": "0000", "public_flags": 0, "flags": 0, "bot": true, "global_name": null},
        "pinned": false,
        "mention_everyone": false,
        "tts": false,
        "webhook_id": DISCORD_WEBHOOK_ID,
    })
}

impl Respond for Discord {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let query = |k: &str| request.url.query_pairs().find(|(key, _)| key == k).map(|(_, v)| v.into_owned());
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let method = request.method.as_str().to_owned();
        s.requests.push((method.clone(), query("thread_id"), body.clone()));
        s.arrivals.push(Instant::now());
        let n = s.arrivals.len();
        if let Some(answer) = s.at.remove(&n).or_else(|| s.first.pop_front()) {
            return answer;
        }
        let segments: Vec<&str> = request.url.path().trim_start_matches('/').split('/').collect();
        // api, v10, webhooks, ID, TOKEN[, messages, MESSAGE_ID]
        let reply = |(status, body): Reply| match body {
            Value::Null => ResponseTemplate::new(status),
            body => ResponseTemplate::new(status).set_body_json(body),
        };
        if segments[3] != DISCORD_WEBHOOK_ID || s.deleted {
            return reply(error(404, 10015, "Unknown Webhook"));
        }
        if segments[4] != DISCORD_TOKEN {
            return reply(error(401, 50027, "Invalid Webhook Token"));
        }
        if !body.is_object() {
            return reply(error(400, 50109, "The request body contains invalid JSON."));
        }
        let (headers, over) = s.pace();
        if let Some(retry_after) = over {
            s.limited += 1;
            return ResponseTemplate::new(429)
                .insert_header("retry-after", format!("{}", retry_after.ceil() as u64))
                .insert_header("x-ratelimit-scope", "user")
                .set_body_json(
                    json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": false}),
                );
        }
        let answer = match (method.as_str(), segments.get(6)) {
            ("POST", None) => s.post(query("wait").as_deref() == Some("true"), query("thread_id"), body),
            ("PATCH", Some(id)) => s.edit(id, query("thread_id"), body),
            _ => error(405, 0, "405: Method Not Allowed"),
        };
        headers.into_iter().fold(reply(answer), |a, (k, v)| a.insert_header(k, v))
    }
}

#[test]
fn the_standin_answers_as_discord_documents() {
    let s = Discord::default();
    let mut st = s.0.lock().unwrap();
    st.forum = true;
    assert_eq!(st.post(true, None, json!({"content": "hi"})).1["code"], 220001);
    st.post(true, None, json!({"content": "hi", "thread_name": "call"}));
    let thread = st.thread_names[0].0.clone();
    assert_eq!(st.messages[0].id, thread, "a forum thread's id is its first message's");
    assert_eq!(st.post(true, Some("42".into()), json!({"content": "x"})).1["code"], 10003);
    st.threads.insert(thread.clone(), (true, false));
    assert_eq!(st.edit(&thread, Some(thread.clone()), json!({"content": "y"})).1["code"], 50083);
    st.post(true, Some(thread.clone()), json!({"content": "unarchives"}));
    assert_eq!(st.threads[&thread], (false, false));
    st.threads.insert(thread.clone(), (true, true));
    assert_eq!(st.post(true, Some(thread.clone()), json!({"content": "x"})).1["code"], 50083, "locked");
    assert_eq!(st.edit(&thread, None, json!({"content": "y"})).1["code"], 10008, "not in the channel");
}
