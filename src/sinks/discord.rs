//! Discord webhooks: the execute URL, message limits, mention safety, and Discord's answers.
//!
//! References: <https://discord.com/developers/docs/resources/webhook#execute-webhook>,
//! <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>,
//! <https://discord.com/developers/docs/topics/rate-limits>.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{blank, cut, Answer, Fitted, Misplaced, Outcome, Place, Refused, NO_TEXT};
use crate::config::WebhookUrl;
use crate::text;

/// Posting budget per webhook before Discord's headers say more: 5 per 2 s, and about 30 per
/// minute per channel. <https://discord.com/developers/docs/topics/rate-limits>
pub const DEFAULT_RATE_LIMIT: [(u32, Duration); 2] = [(5, Duration::from_secs(2)), (30, Duration::from_secs(60))];

/// The API version the relay speaks. <https://discord.com/developers/docs/reference#api-versioning>
pub const API_VERSION: &str = "v10";
/// `content`. <https://discord.com/developers/docs/resources/webhook#execute-webhook-jsonform-params>
pub const MAX_CONTENT_CHARS: usize = 2_000;
/// Embeds in one message. <https://discord.com/developers/docs/resources/webhook#execute-webhook-jsonform-params>
pub const MAX_EMBEDS: usize = 10;
/// Embed title. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_TITLE_CHARS: usize = 256;
/// Embed description. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_DESCRIPTION_CHARS: usize = 4_096;
/// Fields per embed. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_FIELDS: usize = 25;
/// Field name. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_FIELD_NAME_CHARS: usize = 256;
/// Field value. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_FIELD_VALUE_CHARS: usize = 1_024;
/// Footer text. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_FOOTER_CHARS: usize = 2_048;
/// Author name. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_AUTHOR_CHARS: usize = 256;
/// Title, description, field names and values, footer and author name across all embeds of one
/// message. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub const MAX_EMBED_TOTAL_CHARS: usize = 6_000;
/// A thread's name (`thread_name` when a webhook creates a forum thread).
/// <https://discord.com/developers/docs/resources/webhook#execute-webhook-jsonform-params>
pub const MAX_THREAD_NAME_CHARS: usize = 100;
/// Webhook username length. <https://discord.com/developers/docs/resources/webhook#execute-webhook-jsonform-params>
pub const MAX_USERNAME_CHARS: usize = 80;

/// Discord refuses usernames containing these. <https://discord.com/developers/docs/resources/user#usernames-and-nicknames>
const FORBIDDEN_IN_USERNAME: [&str; 2] = ["discord", "clyde"];

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

/// Checks a webhook username against Discord's rules.
pub fn check_username(name: &str) -> Result<(), String> {
    let n = text::chars(name.trim());
    if n == 0 || n > MAX_USERNAME_CHARS {
        return Err(format!("must be 1 to {MAX_USERNAME_CHARS} characters, not {n}"));
    }
    let lower = name.to_lowercase();
    if let Some(word) = FORBIDDEN_IN_USERNAME.iter().find(|w| lower.contains(*w)) {
        return Err(format!("may not contain \"{word}\" (Discord refuses it)"));
    }
    Ok(())
}

/// Fills `username`/`avatar_url` from the channel when the template left them out.
pub fn apply_defaults(body: &mut Value, username: Option<&str>, avatar_url: Option<&str>) {
    if let Value::Object(top) = body {
        if let Some(u) = username {
            top.entry("username").or_insert_with(|| json!(u));
        }
        if let Some(a) = avatar_url {
            top.entry("avatar_url").or_insert_with(|| json!(a));
        }
    }
}

/// Makes sure no text in a post can ping anyone Discord would parse on its own: `allowed_mentions`
/// always carries `"parse": []`. A template may still list the user or role IDs it means to ping
/// (`"roles": ["123"]`), but asking Discord to parse `everyone`, `users` or `roles` in any text
/// would let a caller's `@everyone` or `<@&role>` through, so it is refused.
/// <https://discord.com/developers/docs/resources/message#allowed-mentions-object>
fn secure_mentions(top: &mut Map<String, Value>) -> Result<(), Refused> {
    let refuse = |message: String| Refused { message, key: Some("allowed_mentions") };
    let mentions = top.entry("allowed_mentions").or_insert_with(|| json!({"parse": []}));
    let Value::Object(m) = mentions else {
        return Err(refuse("`allowed_mentions` must be an object".into()));
    };
    match m.get("parse") {
        None | Some(Value::Null) => {
            m.insert("parse".into(), json!([]));
        }
        Some(Value::Array(p)) if p.is_empty() => {}
        Some(other) => {
            return Err(refuse(format!(
                "`allowed_mentions.parse` is {other}: Discord would then let a caller's @everyone or mentions in \
                 the text ping people; list the IDs to ping in `users` or `roles` instead"
            )))
        }
    }
    Ok(())
}

/// Makes a rendered body safe and within Discord's limits, whatever the template wrote: mentions
/// as [`secure_mentions`] says; blank `content` dropped (or [`NO_TEXT`] when nothing else is
/// left), blank embed descriptions become [`NO_TEXT`] and blank titles, footers and author names
/// are dropped (Discord refuses empty ones); over-long text is cut with `…`; more than
/// [`MAX_EMBEDS`] embeds, or more than [`MAX_EMBED_TOTAL_CHARS`] across them, are split across
/// several posts in order (`content` goes with the first).
pub fn fit(body: Value) -> Result<Fitted, Refused> {
    let Value::Object(mut top) = body else {
        return Err("a Discord body must be a JSON object".into());
    };
    let mut notes = Vec::new();
    secure_mentions(&mut top)?;
    if let Some(u) = top.get("username").and_then(Value::as_str) {
        check_username(u).map_err(|m| Refused { message: format!("`username` {m}"), key: Some("username") })?;
    }
    if let Some(Value::String(c)) = top.get_mut("content") {
        cut(c, MAX_CONTENT_CHARS, "content", &mut notes);
    }
    let content = match top.remove("content") {
        Some(Value::String(c)) if !blank(&c) => Some(c),
        None | Some(Value::Null) | Some(Value::String(_)) => None,
        Some(_) => return Err("`content` must be a string".into()),
    };
    let mut embeds = match top.remove("embeds") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(e)) => e,
        Some(_) => return Err("`embeds` must be an array".into()),
    };
    let content = match content {
        None if embeds.is_empty() => Some(NO_TEXT.to_owned()),
        c => c,
    };
    for (i, e) in embeds.iter_mut().enumerate() {
        fit_embed(e, i, &mut notes)?;
    }

    let mut groups: Vec<Vec<Value>> = Vec::new();
    let mut size = 0;
    for e in embeds {
        let n = embed_chars(&e);
        match groups.last_mut() {
            Some(g) if g.len() < MAX_EMBEDS && size + n <= MAX_EMBED_TOTAL_CHARS => {
                g.push(e);
                size += n;
            }
            _ => {
                groups.push(vec![e]);
                size = n;
            }
        }
    }
    if groups.len() > 1 {
        notes.push(format!("embeds split across {} posts", groups.len()));
    }
    if groups.is_empty() {
        groups.push(Vec::new());
    }
    let posts = groups
        .into_iter()
        .enumerate()
        .map(|(i, group)| {
            let mut post: Map<String, Value> = top.clone();
            if i == 0 {
                if let Some(c) = &content {
                    post.insert("content".into(), json!(c));
                }
            }
            if !group.is_empty() {
                post.insert("embeds".into(), Value::Array(group));
            }
            Value::Object(post)
        })
        .collect();
    Ok(Fitted { posts, notes })
}

fn fit_embed(e: &mut Value, i: usize, notes: &mut Vec<String>) -> Result<(), Refused> {
    if !e.is_object() {
        return Err(format!("embeds[{i}] must be an object").into());
    }
    for (key, pointer) in [("title", "/title"), ("footer", "/footer/text"), ("author", "/author/name")] {
        if e.pointer(pointer).and_then(Value::as_str).is_some_and(blank) {
            e.as_object_mut().expect("checked above").shift_remove(key);
        }
    }
    let embed = e.as_object_mut().expect("checked above");
    let shows_nothing = !VISIBLE_EMBED_KEYS.iter().any(|k| embed.contains_key(*k));
    match embed.get_mut("description") {
        Some(Value::String(d)) if blank(d) => *d = NO_TEXT.into(),
        None if shows_nothing => {
            embed.insert("description".into(), Value::String(NO_TEXT.into()));
        }
        _ => {}
    }
    let limits = [
        ("/title", MAX_TITLE_CHARS),
        ("/description", MAX_DESCRIPTION_CHARS),
        ("/footer/text", MAX_FOOTER_CHARS),
        ("/author/name", MAX_AUTHOR_CHARS),
    ];
    let mut e_value = Value::Object(std::mem::take(embed));
    for (pointer, max) in limits {
        if let Some(Value::String(t)) = e_value.pointer_mut(pointer) {
            cut(t, max, &format!("embeds[{i}]{pointer}"), notes);
        }
    }
    if let Some(Value::Array(fields)) = e_value.get_mut("fields") {
        if fields.len() > MAX_FIELDS {
            notes.push(format!("embeds[{i}].fields: {} fields cut to {MAX_FIELDS}", fields.len()));
            fields.truncate(MAX_FIELDS);
        }
        for (j, f) in fields.iter_mut().enumerate() {
            for (key, max) in [("name", MAX_FIELD_NAME_CHARS), ("value", MAX_FIELD_VALUE_CHARS)] {
                match f.get_mut(key) {
                    Some(Value::String(t)) if t.trim().is_empty() => *t = "—".into(),
                    Some(Value::String(t)) => cut(t, max, &format!("embeds[{i}].fields[{j}].{key}"), notes),
                    _ => return Err(format!("embeds[{i}].fields[{j}] needs a string `{key}`").into()),
                }
            }
        }
    }
    // One embed alone may still exceed the per-message total: shorten its description, then drop
    // trailing fields.
    let over = embed_chars(&e_value).saturating_sub(MAX_EMBED_TOTAL_CHARS);
    if over > 0 {
        if let Some(Value::String(d)) = e_value.get_mut("description") {
            let keep = text::chars(d).saturating_sub(over);
            *d = text::truncate(d, keep.max(1));
            notes.push(format!("embeds[{i}].description shortened to fit {MAX_EMBED_TOTAL_CHARS} characters"));
        }
        while embed_chars(&e_value) > MAX_EMBED_TOTAL_CHARS {
            match e_value.get_mut("fields").and_then(Value::as_array_mut) {
                Some(fields) if !fields.is_empty() => {
                    fields.pop();
                    notes.push(format!("embeds[{i}]: a field dropped to fit {MAX_EMBED_TOTAL_CHARS} characters"));
                }
                _ => break,
            }
        }
    }
    *e = e_value;
    Ok(())
}

/// An embed with none of these shows nothing; Discord refuses it.
const VISIBLE_EMBED_KEYS: [&str; 7] = ["title", "description", "fields", "footer", "author", "image", "thumbnail"];

/// Characters an embed counts toward [`MAX_EMBED_TOTAL_CHARS`].
pub fn embed_chars(e: &Value) -> usize {
    let s = |p: &str| e.pointer(p).and_then(Value::as_str).map_or(0, text::chars);
    let fields = e.get("fields").and_then(Value::as_array).map_or(0, |fs| {
        fs.iter()
            .map(|f| {
                f.get("name").and_then(Value::as_str).map_or(0, text::chars)
                    + f.get("value").and_then(Value::as_str).map_or(0, text::chars)
            })
            .sum()
    });
    s("/title") + s("/description") + s("/footer/text") + s("/author/name") + fields
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

/// Merges the next coalescible post into `into` when the result stays within Discord's limits
/// (10 embeds, 6,000 characters across them, content 2,000). Both must agree on every other key.
pub fn merge(into: &mut Value, next: &Value) -> bool {
    let (Some(a), Some(b)) = (into.as_object(), next.as_object()) else { return false };
    let others = |m: &Map<String, Value>| {
        m.iter()
            .filter(|(k, _)| *k != "content" && *k != "embeds")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    if others(a) != others(b) {
        return false;
    }
    let embeds = |m: &Map<String, Value>| m.get("embeds").and_then(Value::as_array).cloned().unwrap_or_default();
    let (mut embeds_a, embeds_b) = (embeds(a), embeds(b));
    embeds_a.extend(embeds_b);
    if embeds_a.len() > MAX_EMBEDS || embeds_a.iter().map(embed_chars).sum::<usize>() > MAX_EMBED_TOTAL_CHARS {
        return false;
    }
    let content = match (a.get("content").and_then(Value::as_str), b.get("content").and_then(Value::as_str)) {
        (Some(x), Some(y)) => Some(format!("{x}\n{y}")),
        (x, y) => x.or(y).map(str::to_owned),
    };
    if content.as_deref().is_some_and(|c| text::chars(c) > MAX_CONTENT_CHARS) {
        return false;
    }
    let obj = into.as_object_mut().expect("checked above");
    if let Some(c) = content {
        obj.insert("content".into(), Value::String(c));
    }
    if !embeds_a.is_empty() {
        obj.insert("embeds".into(), Value::Array(embeds_a));
    }
    true
}

#[cfg(test)]
mod tests;
