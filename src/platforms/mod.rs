//! The platforms the relay posts to. Each is a folder holding all it knows of one platform (its
//! message rules, how it posts, how it reads the platform's answers into typed outcomes, its
//! pacing defaults, the console's look-alike preview), behind the [`Rules`] trait; this file has
//! what they share and the registry, [`rules`], the one place listing them. Sinks never loop or
//! sleep; whoever drives them decides about retries.

pub mod discord;
mod flat;
pub mod google_chat;
pub mod http;
mod preview;
pub mod slack;
pub mod teams;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;

mod channel;
mod rules;
pub use channel::{keys, Built, Channel, ChannelProblem, Platform, Target};
pub use flat::FlatWebhook;
pub use rules::{all, build, platform, rules, Rules, TextRules, ThreadStyle};

/// What became of one post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The platform accepted it.
    Delivered,
    /// 429: too fast. Try again after `after` (the platform's word, else a default); this never
    /// counts as a failed attempt.
    RateLimited {
        /// How long the platform asked to wait.
        after: Option<Duration>,
        /// Status and body, for logs.
        reason: String,
    },
    /// Worth trying again (5xx, timeout, connection error), after `after` if the platform said.
    Retry {
        /// How long the platform asked to wait.
        after: Option<Duration>,
        /// Status and body, or the transport error, for logs.
        reason: String,
    },
    /// The platform refused it for good (4xx other than 429).
    Permanent {
        /// Status and body, for logs and dead letters.
        reason: String,
        /// The webhook itself is gone or invalid (deleted, archived, bad token): stop sending to
        /// this channel until the configuration is reloaded.
        broken: bool,
    },
    /// The platform refused it for where it went, not for what it says: the same body may go
    /// elsewhere (a new thread, a new message). Whoever placed it decides; anyone else treats it
    /// as [`Outcome::Permanent`].
    Misplaced {
        /// What about the place was wrong.
        why: Misplaced,
        /// Status and body, for logs and dead letters.
        reason: String,
    },
}

/// Why a post or an edit could not go where it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misplaced {
    /// The thread is archived and the request cannot reopen it: Discord's 50083 for an edit in
    /// an archived thread, or for a post into a locked one.
    ThreadArchived,
    /// The thread is gone: Discord's 10003 (`Unknown Channel`) for a `thread_id`, Slack's
    /// `thread_not_found`.
    ThreadGone,
    /// The channel takes no threads: Discord's 220003 for `thread_name` outside a forum.
    NotAForum,
    /// The message can no longer be edited: Discord's 30046 (edits of an old message capped) or
    /// 10008 (deleted); Slack's `message_not_found`, `cant_update_message`, `edit_window_closed`.
    NotEditable,
}

impl Outcome {
    /// `Misplaced` as anyone but the placer sees it: a permanent refusal.
    pub fn settled(self) -> Outcome {
        match self {
            Outcome::Misplaced { reason, .. } => Outcome::Permanent { reason, broken: false },
            other => other,
        }
    }
}

/// A post's outcome plus what the answer said about pacing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// What became of the post.
    pub outcome: Outcome,
    /// Wait this long before the next post (Discord's `X-RateLimit-Remaining: 0` with
    /// `X-RateLimit-Reset-After`).
    pub pause: Option<Duration>,
    /// The platform's answer as `STATUS BODY` (or the transport error), for `send-test`.
    pub answer: String,
    /// The message's id, when the platform says: Slack's `ts`, Discord's message id.
    pub id: Option<String>,
    /// The Discord thread the message went into: the one a `thread_name` post created (the
    /// answer's `channel_id`), or the `thread_id` it was posted or edited in. `None` for a post
    /// in the channel itself, whose `channel_id` is the channel's.
    pub thread: Option<String>,
}

/// Where in a channel a post goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The channel itself.
    Channel,
    /// A new Discord forum thread with this name (the post becomes its first message).
    NewThread(String),
    /// An existing thread: a Slack parent's `ts`, or a Discord thread's id.
    Thread(String),
    /// Not a new post: replace a message (Slack `chat.update` of this `ts`; Discord's webhook
    /// message edit, in this thread if any).
    Edit {
        /// Slack's `ts` or Discord's message id.
        id: String,
        /// Discord: the thread the message is in.
        thread: Option<String>,
    },
}

impl Posted {
    /// A post that got no usable answer.
    pub(crate) fn failed(outcome: Outcome) -> Self {
        let answer = match &outcome {
            Outcome::Retry { reason, .. } | Outcome::Permanent { reason, .. } => reason.clone(),
            _ => String::new(),
        };
        Self { outcome, pause: None, answer, id: None, thread: None }
    }
}

/// The most of an answer's body the relay reads. Success answers echo the whole message (Slack's
/// `chat.postMessage`/`chat.update` its blocks, Discord's `?wait=true` its content and embeds):
/// tens of KB at most, so this is far above any real answer; an error answer is a few hundred
/// bytes.
pub const MAX_ANSWER_BYTES: usize = 4 << 20;
/// Characters of an answer kept in logs, dead letters and `send-test` output.
pub const ANSWER_SHOWN_CHARS: usize = 1_000;

/// A platform's answer, as the classifiers read it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body, whole (up to [`MAX_ANSWER_BYTES`]).
    pub body: String,
    /// The body was longer than [`MAX_ANSWER_BYTES`] and is cut there: far too long to be an
    /// error.
    pub cut: bool,
}

impl Answer {
    /// An answer with a body that was read whole.
    pub fn new(status: u16, headers: HeaderMap, body: impl Into<String>) -> Answer {
        Answer { status, headers, body: body.into(), cut: false }
    }

    /// Reads a response whole (up to [`MAX_ANSWER_BYTES`]), or passes on the transport error.
    pub(crate) async fn read(response: Result<reqwest::Response, String>) -> Result<Answer, String> {
        let mut response = response?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut bytes = Vec::new();
        let mut cut = false;
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                bytes.extend_from_slice(&chunk[..MAX_ANSWER_BYTES - bytes.len()]);
                cut = true;
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned(), cut })
    }

    /// `STATUS BODY`, trimmed and cut to [`ANSWER_SHOWN_CHARS`], for logs, dead letters and
    /// `send-test`.
    pub fn summary(&self) -> String {
        format!("{} {}", self.status, crate::text::truncate(self.body.trim(), ANSWER_SHOWN_CHARS))
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The `Retry-After` header in seconds (integer or decimal), if present.
    pub fn retry_after_header(&self) -> Option<Duration> {
        let v = self.headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse::<f64>().ok()?;
        (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v))
    }
}

/// A body that fits the platform's limits, possibly as several posts, plus notes about what was
/// cut or split (logged as warnings).
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// Bodies to post, in order.
    pub posts: Vec<Value>,
    /// What enforcement changed.
    pub notes: Vec<String>,
}

/// What a text the platform requires to be non-empty becomes when it renders empty or only
/// white space (an empty utterance, say): Slack refuses empty text objects (`invalid_blocks`) and
/// Discord empty messages (50006), and a visible mark says more than a dropped block.
pub const NO_TEXT: &str = "(no text)";

/// Why a rendered body may not be posted. `key` names the JSON key at fault, so the renderer can
/// point at the template line that writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// What is wrong, in a sentence.
    pub message: String,
    /// The key the template wrote that caused it, if one did.
    pub key: Option<&'static str>,
}

impl From<String> for Refused {
    fn from(message: String) -> Self {
        Self { message, key: None }
    }
}

impl From<&str> for Refused {
    fn from(message: &str) -> Self {
        message.to_owned().into()
    }
}

/// `true` for text a platform would refuse as empty.
pub(crate) fn blank(t: &str) -> bool {
    t.trim().is_empty()
}

/// Cuts `t` to `max` characters (with `…`), noting what was cut, for the platforms' `fit`.
pub(crate) fn cut(t: &mut String, max: usize, what: &str, notes: &mut Vec<String>) {
    let n = crate::text::chars(t);
    if n > max {
        *t = crate::text::truncate(t, max);
        notes.push(format!("{what} cut from {n} to {max} characters"));
    }
}

/// Posts one body to one destination.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Posts `body` (a JSON document) once, at `place`, and classifies the answer.
    async fn post(&self, body: &str, place: &Place) -> Posted;

    /// As [`Sink::post`], for a post that `key` names: the same key on every attempt of the same
    /// post (a queue entry and its part), for platforms that let receivers recognise a retry.
    async fn post_as(&self, body: &str, place: &Place, key: &str) -> Posted {
        let _ = key;
        self.post(body, place).await
    }
}

// reqwest errors carry the request URL, which holds the webhook's token: `without_url` drops it.
pub(crate) fn transport_error(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut msg = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

/// The HTTP client every sink shares: rustls, a per-request timeout, no redirects (a redirected
/// webhook post would lose its body), and a recognisable user agent.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("callrelay/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's settings are valid")
}

/// A sink for a channel, or `None` when the channel is disabled.
pub fn sink_for(channel: &Channel, client: &reqwest::Client) -> Option<Arc<dyn Sink>> {
    Some(rules(channel.platform).sink(channel.target.as_ref().ok()?, client.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One table of answers that every platform's classifier is held to.
    #[test]
    fn both_platforms_classify_the_shared_table_of_answers() {
        #[derive(Debug, PartialEq)]
        enum Class {
            Ok,
            Limited,
            Retry,
            Dead,
            Broken,
        }
        let class = |o: Outcome| match o {
            Outcome::Delivered => Class::Ok,
            Outcome::RateLimited { .. } => Class::Limited,
            Outcome::Retry { .. } => Class::Retry,
            Outcome::Permanent { broken: false, .. } | Outcome::Misplaced { .. } => Class::Dead,
            Outcome::Permanent { broken: true, .. } => Class::Broken,
        };
        let answer = |status: u16, body: &str| Answer::new(status, HeaderMap::new(), body);
        let table: Vec<(u16, &str, &str, Class, Class)> = vec![
            // status, Slack body, Discord body, Slack class, Discord class
            (200, "ok", r#"{"id":"1"}"#, Class::Ok, Class::Ok),
            (204, "", "", Class::Ok, Class::Ok),
            (
                400,
                "invalid_payload",
                r#"{"message": "Cannot send an empty message", "code": 50006}"#,
                Class::Dead,
                Class::Dead,
            ),
            (
                401,
                "invalid_token",
                r#"{"message": "Invalid Webhook Token", "code": 50027}"#,
                Class::Broken,
                Class::Broken,
            ),
            (403, "action_prohibited", r#"{"code":50013}"#, Class::Dead, Class::Dead),
            (404, "no_service", r#"{"code":10015}"#, Class::Broken, Class::Broken),
            (404, "channel_not_found", r#"{"code":10015}"#, Class::Broken, Class::Broken),
            (410, "channel_is_archived", "", Class::Broken, Class::Broken),
            (413, "", "", Class::Dead, Class::Dead),
            (429, "rate_limited", r#"{"retry_after":1.5,"global":false}"#, Class::Limited, Class::Limited),
            (500, "rollup_error", "", Class::Retry, Class::Retry),
            (502, "", "", Class::Retry, Class::Retry),
            (503, "", "", Class::Retry, Class::Retry),
            (504, "", "", Class::Retry, Class::Retry),
        ];
        for (status, slack_body, discord_body, slack_class, discord_class) in table {
            assert_eq!(
                class(slack::webhook::classify(&answer(status, slack_body))),
                slack_class,
                "Slack {status} {slack_body}"
            );
            assert_eq!(
                class(discord::webhook::classify(&answer(status, discord_body))),
                discord_class,
                "Discord {status}"
            );
        }
    }

    #[test]
    fn retry_after_headers_are_read_in_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "2".parse().unwrap());
        let a = Answer::new(429, headers, "");
        assert_eq!(
            slack::webhook::classify(&a),
            Outcome::RateLimited { after: Some(Duration::from_secs(2)), reason: "429 ".into() }
        );
    }
}

#[cfg(test)]
mod answers {
    use super::*;

    /// Answers are read whole: a success that echoes a long message is still read as one.
    #[tokio::test]
    async fn a_long_answer_is_read_whole_and_shown_cut() {
        let body = format!("{{\"ok\":true,\"ts\":\"1.2\",\"message\":{{\"text\":\"{}\"}}}}", "x".repeat(50_000));
        let response = ::http::Response::builder().status(200).body(body.clone()).unwrap();
        let answer = Answer::read(Ok(reqwest::Response::from(response))).await.unwrap();
        assert_eq!(answer.body, body);
        assert!(!answer.cut);
        assert_eq!(slack::app::classify(&answer), Outcome::Delivered);
        assert!(answer.summary().chars().count() <= ANSWER_SHOWN_CHARS + 4, "logs get a cut copy");
    }

    /// An answer over the cap cannot be parsed whole; a 2xx that long is no Slack error.
    #[tokio::test]
    async fn a_success_longer_than_the_cap_is_still_delivered_and_an_error_page_is_not() {
        let huge = format!("{{\"ok\":true,\"message\":{{\"text\":\"{}\"}}}}", "x".repeat(MAX_ANSWER_BYTES));
        let response = ::http::Response::builder().status(200).body(huge).unwrap();
        let answer = Answer::read(Ok(reqwest::Response::from(response))).await.unwrap();
        assert!(answer.cut && answer.body.len() == MAX_ANSWER_BYTES);
        assert_eq!(slack::app::classify(&answer), Outcome::Delivered);
        let proxy = Answer::new(200, HeaderMap::new(), "<html>bad gateway</html>");
        assert!(matches!(slack::app::classify(&proxy), Outcome::Retry { .. }), "not JSON, not cut: tried again");
    }
}
