//! Slack's Web API with a bot token: `chat.postMessage` into one channel (`thread_ts` for a reply),
//! `chat.update` to edit, and how to read Slack's answers, which report most errors as HTTP 200
//! with `{"ok": false, "error": "…"}`.
//!
//! References: <https://docs.slack.dev/reference/methods/chat.postMessage>,
//! <https://docs.slack.dev/reference/methods/chat.update>,
//! <https://docs.slack.dev/apis/web-api/rate-limits>.

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;
use url::Url;

use crate::config::Secret;
use crate::platforms::{transport_error, Answer, Misplaced, Outcome, Place, Posted, Sink};

/// The Web API's base URL.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// `chat.update` is Tier 3: about 50 a minute per workspace and app, so shared by every channel
/// posting with the same token. <https://docs.slack.dev/apis/web-api/rate-limits>
pub const EDIT_RATE_LIMIT: [(u32, std::time::Duration); 1] = [(50, std::time::Duration::from_secs(60))];

/// Characters of transcript text one live-transcript message holds before a new one continues
/// it: `chat.update` cuts text over 4,000 characters.
/// <https://docs.slack.dev/reference/methods/chat.update>
pub const TRANSCRIPT_CHARS: usize = 4_000;

/// Errors meaning the token no longer works (revoked, expired, wrong kind, missing a scope):
/// nothing will get through until it is replaced, so the channel is marked broken.
const TOKEN_BROKEN: [&str; 12] = [
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
    "missing_scope",
    "no_permission",
    "not_allowed_token_type",
    "ekm_access_denied",
    "team_access_not_granted",
    "org_login_required",
    "two_factor_setup_required",
];

/// Errors meaning the destination is gone or closed to the app: the channel is marked broken.
const DESTINATION_BROKEN: [&str; 6] = [
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "restricted_action",
    "restricted_action_read_only_channel",
    "team_not_found",
];

/// Errors on Slack's side, worth trying again.
const RETRYABLE: [&str; 4] = ["internal_error", "fatal_error", "service_unavailable", "request_timeout"];

/// Checks a channel ID (`C0123ABCD`, `G…` for older private channels, `D…` for a direct message).
pub fn check_channel_id(id: &str) -> Result<(), String> {
    let looks_like_id = id.len() >= 9
        && id.starts_with(['C', 'G', 'D'])
        && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if looks_like_id {
        Ok(())
    } else {
        Err(format!(
            "must be a channel ID such as C0123ABCD (in Slack: the channel's details, at the bottom), not `{id}`"
        ))
    }
}

/// The Web API base URL: `configured`, else [`DEFAULT_API_URL`]; `http(s)`, no trailing slash.
pub fn base_url(configured: Option<&str>) -> Result<Url, String> {
    let raw = configured.unwrap_or(DEFAULT_API_URL).trim().trim_end_matches('/');
    let url = Url::parse(raw).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http(s) URL with a host".into());
    }
    Ok(url)
}

/// The URL of a Web API method under `base`.
pub fn method_url(base: &Url, method: &str) -> Url {
    let mut url = base.clone();
    let path = format!("{}/{method}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// Errors about the message a request names rather than what it says: the thread's parent is
/// gone, or the message can no longer be edited.
fn misplaced(error: &str) -> Option<Misplaced> {
    match error {
        "thread_not_found" => Some(Misplaced::ThreadGone),
        "message_not_found" | "cant_update_message" | "edit_window_closed" => Some(Misplaced::NotEditable),
        _ => None,
    }
}

/// Reads a Web API answer, whole: `ok: true` is delivered, however long the message it echoes;
/// `ok: false` is classified by its `error`; 429 (and `ratelimited`) waits as `Retry-After`
/// says; 5xx and Slack-side errors are retried; an HTTP 401, 403 or 404 means the token or
/// `api_url` is wrong. A 2xx answer too long to read whole ([`Answer::cut`]) is no error: Slack's
/// errors are a few dozen bytes.
pub fn classify(answer: &Answer) -> Outcome {
    let body = answer.body.trim();
    let reason = answer.summary();
    match answer.status {
        429 => return Outcome::RateLimited { after: answer.retry_after_header(), reason },
        500..=599 => return Outcome::Retry { after: answer.retry_after_header(), reason },
        401 | 403 | 404 | 410 => return Outcome::Permanent { reason, broken: true },
        200..=299 => {}
        _ => return Outcome::Permanent { reason, broken: false },
    }
    let Ok(parsed) = serde_json::from_str::<Value>(body) else {
        if answer.cut && body.starts_with('{') {
            return Outcome::Delivered;
        }
        // Not Slack's JSON (a proxy's page, say): try again rather than lose the post.
        return Outcome::Retry { after: None, reason };
    };
    if parsed.get("ok").and_then(Value::as_bool) == Some(true) {
        return Outcome::Delivered;
    }
    let error = parsed.get("error").and_then(Value::as_str).unwrap_or("");
    match error {
        "ratelimited" | "rate_limited" => Outcome::RateLimited { after: answer.retry_after_header(), reason },
        e if RETRYABLE.contains(&e) => Outcome::Retry { after: answer.retry_after_header(), reason },
        e if misplaced(e).is_some() => Outcome::Misplaced { why: misplaced(e).expect("checked"), reason },
        e if TOKEN_BROKEN.contains(&e) || DESTINATION_BROKEN.contains(&e) => {
            Outcome::Permanent { reason, broken: true }
        }
        _ => Outcome::Permanent { reason, broken: false },
    }
}

/// Posts with `chat.postMessage` (and edits with `chat.update`) in one channel.
pub struct AppSink {
    url: Url,
    token: Secret,
    channel: String,
    client: reqwest::Client,
}

impl AppSink {
    /// A sink posting into `channel` through the Web API at `api_url`.
    pub fn new(api_url: &Url, token: Secret, channel: String, client: reqwest::Client) -> Self {
        Self { url: api_url.clone(), token, channel, client }
    }
}

#[async_trait]
impl Sink for AppSink {
    async fn post(&self, body: &str, place: &Place) -> Posted {
        let mut message: Value = match serde_json::from_str(body) {
            Ok(v) => v,
            Err(e) => return Posted::failed(Outcome::Permanent { reason: format!("not JSON: {e}"), broken: false }),
        };
        let mut method = "chat.postMessage";
        if let Value::Object(m) = &mut message {
            m.insert("channel".into(), Value::String(self.channel.clone()));
            match place {
                Place::Thread(ts) => {
                    m.insert("thread_ts".into(), Value::String(ts.clone()));
                }
                Place::Edit { id, .. } => {
                    m.insert("ts".into(), Value::String(id.clone()));
                    method = "chat.update";
                }
                Place::Channel | Place::NewThread(_) => {}
            }
        }
        let response = self
            .client
            .post(method_url(&self.url, method))
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .header(AUTHORIZATION, format!("Bearer {}", self.token.expose()))
            .body(message.to_string())
            .send()
            .await;
        match Answer::read(response.map_err(transport_error)).await {
            Ok(answer) => {
                let ts = answer.json().and_then(|v| v.get("ts").and_then(Value::as_str).map(str::to_owned));
                Posted { outcome: classify(&answer), pause: None, answer: answer.summary(), id: ts, thread: None }
            }
            Err(reason) => Posted::failed(Outcome::Retry { after: None, reason }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    #[test]
    fn channel_ids_and_api_urls_are_checked() {
        assert!(check_channel_id("C0123ABCD").is_ok());
        assert!(check_channel_id("G01234567").is_ok());
        assert!(check_channel_id("#general").unwrap_err().contains("`#general`"));
        assert!(check_channel_id("c0123abcd").is_err());
        assert_eq!(
            method_url(&base_url(None).unwrap(), "chat.postMessage").as_str(),
            "https://slack.com/api/chat.postMessage"
        );
        let proxy = base_url(Some("http://127.0.0.1:9000/slack/api/")).unwrap();
        assert_eq!(method_url(&proxy, "chat.update").as_str(), "http://127.0.0.1:9000/slack/api/chat.update");
        assert!(base_url(Some("ftp://x")).is_err());
    }

    #[test]
    fn ok_false_answers_are_classified_by_their_error() {
        let answer = |status: u16, body: &str| Answer::new(status, HeaderMap::new(), body);
        let class = |status: u16, body: &str| match classify(&answer(status, body)) {
            Outcome::Delivered => "delivered",
            Outcome::RateLimited { .. } => "limited",
            Outcome::Retry { .. } => "retry",
            Outcome::Permanent { broken: true, .. } => "broken",
            Outcome::Permanent { broken: false, .. } => "dead",
            Outcome::Misplaced { why: Misplaced::ThreadGone, .. } => "thread gone",
            Outcome::Misplaced { why: Misplaced::NotEditable, .. } => "not editable",
            Outcome::Misplaced { .. } => "misplaced",
        };
        let table = [
            (200, r#"{"ok":true,"channel":"C1","ts":"1.2"}"#, "delivered"),
            (200, r#"{"ok":false,"error":"invalid_auth"}"#, "broken"),
            (200, r#"{"ok":false,"error":"token_revoked"}"#, "broken"),
            (200, r#"{"ok":false,"error":"missing_scope","needed":"chat:write"}"#, "broken"),
            (200, r#"{"ok":false,"error":"channel_not_found"}"#, "broken"),
            (200, r#"{"ok":false,"error":"not_in_channel"}"#, "broken"),
            (200, r#"{"ok":false,"error":"is_archived"}"#, "broken"),
            (200, r#"{"ok":false,"error":"invalid_blocks"}"#, "dead"),
            (200, r#"{"ok":false,"error":"msg_too_long"}"#, "dead"),
            (200, r#"{"ok":false,"error":"no_text"}"#, "dead"),
            (200, r#"{"ok":false,"error":"ratelimited"}"#, "limited"),
            (200, r#"{"ok":false,"error":"internal_error"}"#, "retry"),
            (200, r#"{"ok":false,"error":"thread_not_found"}"#, "thread gone"),
            (200, r#"{"ok":false,"error":"message_not_found"}"#, "not editable"),
            (200, r#"{"ok":false,"error":"cant_update_message"}"#, "not editable"),
            (200, r#"{"ok":false,"error":"edit_window_closed"}"#, "not editable"),
            (200, "<html>proxy</html>", "retry"),
            (429, "", "limited"),
            (503, "", "retry"),
            (401, "", "broken"),
            (404, "", "broken"),
            (400, "", "dead"),
        ];
        for (status, body, expected) in table {
            assert_eq!(class(status, body), expected, "{status} {body}");
        }
    }
}
