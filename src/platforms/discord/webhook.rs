//! Discord webhooks on the wire: the execute URL, posting into threads, editing, and reading
//! Discord's answers.
//!
//! References: <https://discord.com/developers/docs/resources/webhook#execute-webhook>,
//! <https://discord.com/developers/docs/topics/rate-limits>.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

use crate::config::WebhookUrl;
use crate::platforms::{transport_error, Answer, Misplaced, Outcome, Place, Posted, Sink};

/// Posts to one Discord webhook (its URL already the `/api/v10/…?wait=true` form): in the channel,
/// into a thread, or as an edit of one of its messages.
pub struct WebhookSink {
    url: WebhookUrl,
    client: reqwest::Client,
}

impl WebhookSink {
    /// A sink for `url` (see [`execute_url`]).
    pub fn new(url: WebhookUrl, client: reqwest::Client) -> Self {
        Self { url, client }
    }
}

#[async_trait]
impl Sink for WebhookSink {
    async fn post(&self, body: &str, place: &Place) -> Posted {
        let (method, url, body) = match place {
            Place::Edit { id, thread } => {
                (reqwest::Method::PATCH, edit_url(&self.url, id, thread.as_deref()), body.to_owned())
            }
            Place::Thread(_) | Place::NewThread(_) => {
                let (url, body) = into_thread(&self.url, body, place);
                (reqwest::Method::POST, url, body)
            }
            Place::Channel => (reqwest::Method::POST, self.url.expose().clone(), body.to_owned()),
        };
        let response =
            self.client.request(method, url).header(CONTENT_TYPE, "application/json").body(body).send().await;
        let answer = match Answer::read(response.map_err(transport_error)).await {
            Ok(a) => a,
            Err(reason) => return Posted::failed(Outcome::Retry { after: None, reason }),
        };
        let saved = answer.json();
        let field = |f: &str| saved.as_ref()?.get(f)?.as_str().map(str::to_owned);
        // The thread the message is in: a new thread's id is the answer's `channel_id`; outside a
        // thread `channel_id` is the channel's own, which Discord refuses as a `thread_id`.
        let thread = match place {
            Place::NewThread(_) => field("channel_id"),
            Place::Thread(t) => Some(t.clone()),
            Place::Edit { thread, .. } => thread.clone(),
            Place::Channel => None,
        };
        Posted { outcome: classify(&answer), pause: pause(&answer), answer: answer.summary(), id: field("id"), thread }
    }
}

/// Posting budget per webhook before Discord's headers say more: 5 per 2 s, and about 30 per
/// minute per channel. <https://discord.com/developers/docs/topics/rate-limits>
pub const DEFAULT_RATE_LIMIT: [(u32, Duration); 2] = [(5, Duration::from_secs(2)), (30, Duration::from_secs(60))];

/// The API version the relay speaks. <https://discord.com/developers/docs/reference#api-versioning>
pub const API_VERSION: &str = "v10";
/// The URL to post to: `/api/v10/webhooks/ID/TOKEN?wait=true` on the configured host and path
/// prefix. A URL copied from Discord's UI (`/api/webhooks/…`) has no version; one with another
/// version is moved to v10. `wait=true` makes Discord answer 200 with the saved message, or an
/// error, instead of a 204 that hides failures.
pub fn execute_url(url: &WebhookUrl) -> Result<WebhookUrl, String> {
    let mut url = url.expose().clone();
    let segments: Vec<String> = url.path_segments().map(|s| s.map(String::from).collect()).unwrap_or_default();
    let api = segments.iter().position(|s| s == "api").ok_or(NOT_A_WEBHOOK)?;
    let mut rest = &segments[api + 1..];
    if rest.first().is_some_and(|s| is_version(s)) {
        rest = &rest[1..];
    }
    if rest.len() < 3 || rest[0] != "webhooks" || rest[1].is_empty() || rest[2].is_empty() {
        return Err(NOT_A_WEBHOOK.into());
    }
    let mut path: Vec<&str> = segments[..=api].iter().map(String::as_str).collect();
    path.push(API_VERSION);
    path.extend(rest.iter().map(String::as_str));
    url.set_path(&path.join("/"));
    let query: Vec<(String, String)> =
        url.query_pairs().filter(|(k, _)| k != "wait").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    url.query_pairs_mut().clear().extend_pairs(query).append_pair("wait", "true");
    WebhookUrl::parse(url.as_str())
}

const NOT_A_WEBHOOK: &str = "is not a Discord webhook URL (expected …/api/webhooks/ID/TOKEN)";

fn is_version(s: &str) -> bool {
    s.len() > 1 && s.starts_with('v') && s[1..].chars().all(|c| c.is_ascii_digit())
}

/// The URL and body of a post into a thread: `?thread_id=` for an existing one; `thread_name` in
/// the body to create one (forum and media channels only; elsewhere Discord answers 220003).
/// <https://discord.com/developers/docs/resources/webhook#execute-webhook-query-string-params>
pub fn into_thread(url: &WebhookUrl, body: &str, place: &Place) -> (url::Url, String) {
    let mut url = url.expose().clone();
    let mut body = body.to_owned();
    match place {
        Place::Thread(id) => {
            url.query_pairs_mut().append_pair("thread_id", id);
        }
        Place::NewThread(name) => {
            if let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(&body) {
                m.insert("thread_name".into(), json!(name));
                body = Value::Object(m).to_string();
            }
        }
        Place::Channel | Place::Edit { .. } => {}
    }
    (url, body)
}

/// The URL that edits one of the webhook's messages: `…/webhooks/ID/TOKEN/messages/MESSAGE_ID`,
/// with `thread_id` when the message is in a thread.
/// <https://discord.com/developers/docs/resources/webhook#edit-webhook-message>
pub fn edit_url(url: &WebhookUrl, message_id: &str, thread: Option<&str>) -> url::Url {
    let mut url = url.expose().clone();
    let path = format!("{}/messages/{message_id}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    if let Some(t) = thread {
        url.query_pairs_mut().append_pair("thread_id", t);
    }
    url
}

/// Discord's JSON error codes the relay acts on.
/// <https://discord.com/developers/docs/topics/opcodes-and-status-codes#json-json-error-codes>
pub mod code {
    /// `Unknown Channel`: a `thread_id` that is not (or no longer) a thread of the channel.
    pub const UNKNOWN_CHANNEL: u64 = 10003;
    /// `Unknown Message`: the message to edit was deleted, or is not where the request says.
    pub const UNKNOWN_MESSAGE: u64 = 10008;
    /// `Unknown Webhook`.
    pub const UNKNOWN_WEBHOOK: u64 = 10015;
    /// Edits of a message older than an hour are capped.
    pub const EDITS_CAPPED: u64 = 30046;
    /// `Invalid Webhook Token`.
    pub const INVALID_TOKEN: u64 = 50027;
    /// `Thread is archived`: an edit in an archived thread, or a post into a locked one.
    pub const THREAD_ARCHIVED: u64 = 50083;
    /// `thread_name` sent to a channel that is not a forum or media channel.
    pub const NOT_A_FORUM: u64 = 220003;
}

/// Reads Discord's answer. With `wait=true` success is 200 with the whole message; errors are
/// JSON `{"message": "…", "code": N}` (read whole, so the code is never guessed from text). 429
/// carries `retry_after` (float seconds) in its body and a `Retry-After` header. 404 (10015,
/// unknown webhook) and 401 (50027, invalid token) mean the webhook is gone: the channel is
/// broken, and more requests would count toward Discord's invalid-request ban. Codes about the
/// place (a thread archived or gone, not a forum, a message that can no longer be edited) are
/// [`Outcome::Misplaced`].
pub fn classify(answer: &Answer) -> Outcome {
    let reason = answer.summary();
    let error = answer.json();
    match answer.status {
        200..=299 => Outcome::Delivered,
        429 => {
            let from_body = error
                .and_then(|v| v.get("retry_after").and_then(Value::as_f64))
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64);
            Outcome::RateLimited { after: from_body.or_else(|| answer.retry_after_header()), reason }
        }
        500..=599 => Outcome::Retry { after: answer.retry_after_header(), reason },
        401 | 410 => Outcome::Permanent { reason, broken: true },
        status => {
            let why = match error.and_then(|v| v.get("code").and_then(Value::as_u64)) {
                Some(code::THREAD_ARCHIVED) => Some(Misplaced::ThreadArchived),
                Some(code::UNKNOWN_CHANNEL) => Some(Misplaced::ThreadGone),
                Some(code::NOT_A_FORUM) => Some(Misplaced::NotAForum),
                Some(code::EDITS_CAPPED | code::UNKNOWN_MESSAGE) => Some(Misplaced::NotEditable),
                _ => None,
            };
            match why {
                Some(why) => Outcome::Misplaced { why, reason },
                None => Outcome::Permanent { reason, broken: status == 404 },
            }
        }
    }
}

/// How long to hold the next post: when `X-RateLimit-Remaining` is 0, `X-RateLimit-Reset-After`
/// seconds. <https://discord.com/developers/docs/topics/rate-limits#header-format>
pub fn pause(answer: &Answer) -> Option<Duration> {
    let header = |name: &str| answer.headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
    let remaining = header("x-ratelimit-remaining")?;
    let reset_after = header("x-ratelimit-reset-after").filter(|s| s.is_finite() && *s >= 0.0)?;
    (remaining <= 0.0).then(|| Duration::from_secs_f64(reset_after))
}
