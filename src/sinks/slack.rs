//! Slack incoming webhooks: escaping, message limits, and how to read Slack's answers.
//!
//! References: <https://api.slack.com/messaging/webhooks>,
//! <https://api.slack.com/reference/surfaces/formatting#escaping>,
//! <https://api.slack.com/reference/block-kit/blocks>.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{cut, Answer, Fitted, Outcome};
use crate::text;

/// Posting budget: about one message per second per webhook.
/// <https://api.slack.com/apis/rate-limits#incoming-webhooks>
pub const DEFAULT_RATE_LIMIT: [(u32, Duration); 1] = [(1, Duration::from_secs(1))];

/// `text` of a message. <https://api.slack.com/methods/chat.postMessage#truncating>
pub const MAX_TEXT_CHARS: usize = 40_000;
/// Blocks in one message. <https://api.slack.com/reference/block-kit/blocks>
pub const MAX_BLOCKS: usize = 50;
/// `text` of a section block. <https://api.slack.com/reference/block-kit/blocks#section>
pub const MAX_SECTION_TEXT_CHARS: usize = 3_000;
/// `fields` of a section block. <https://api.slack.com/reference/block-kit/blocks#section>
pub const MAX_SECTION_FIELDS: usize = 10;
/// Each section field's text. <https://api.slack.com/reference/block-kit/blocks#section>
pub const MAX_SECTION_FIELD_CHARS: usize = 2_000;
/// `text` of a header block. <https://api.slack.com/reference/block-kit/blocks#header>
pub const MAX_HEADER_CHARS: usize = 150;
/// Elements of a context block. <https://api.slack.com/reference/block-kit/blocks#context>
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// Each context element's text (a text object). <https://api.slack.com/reference/block-kit/composition-objects#text>
pub const MAX_CONTEXT_TEXT_CHARS: usize = 3_000;

/// Slack's own escaping for user text: `&`, `<` and `>` become entities, so no text can form a
/// mention (`<!channel>`, `<@U…>`, `<!subteam^…>`) or a link.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// How many characters `c` takes once escaped.
pub fn escaped_len(c: char) -> usize {
    match c {
        '&' => 5,
        '<' | '>' => 4,
        _ => 1,
    }
}

/// Enforces Slack's limits on a rendered body: over-long text is cut with `…`, and more than
/// [`MAX_BLOCKS`] blocks are split across several posts (in order, each repeating `text`).
pub fn fit(body: Value) -> Result<Fitted, String> {
    let Value::Object(mut top) = body else {
        return Err("a Slack body must be a JSON object".into());
    };
    let mut notes = Vec::new();
    if let Some(Value::String(t)) = top.get_mut("text") {
        cut(t, MAX_TEXT_CHARS, "text", &mut notes);
    }
    let blocks = match top.remove("blocks") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(b)) => b,
        Some(_) => return Err("`blocks` must be an array".into()),
    };
    let has_text = top.get("text").and_then(Value::as_str).is_some_and(|t| !t.trim().is_empty());
    if blocks.is_empty() && !has_text {
        return Err("a Slack message needs a non-empty `text` or `blocks`".into());
    }
    let mut blocks = blocks;
    for (i, block) in blocks.iter_mut().enumerate() {
        fit_block(block, i, &mut notes);
    }
    if blocks.is_empty() {
        return Ok(Fitted { posts: vec![Value::Object(top)], notes });
    }
    if blocks.len() > MAX_BLOCKS {
        notes.push(format!("{} blocks split across {} posts", blocks.len(), blocks.len().div_ceil(MAX_BLOCKS)));
    }
    let posts = blocks
        .chunks(MAX_BLOCKS)
        .map(|group| {
            let mut post: Map<String, Value> = top.clone();
            post.insert("blocks".into(), Value::Array(group.to_vec()));
            Value::Object(post)
        })
        .collect();
    Ok(Fitted { posts, notes })
}

fn fit_block(block: &mut Value, i: usize, notes: &mut Vec<String>) {
    let kind = block.get("type").and_then(Value::as_str).unwrap_or("").to_owned();
    match kind.as_str() {
        "section" => {
            if let Some(Value::String(t)) = block.pointer_mut("/text/text") {
                cut(t, MAX_SECTION_TEXT_CHARS, &format!("blocks[{i}].text"), notes);
            }
            if let Some(Value::Array(fields)) = block.get_mut("fields") {
                if fields.len() > MAX_SECTION_FIELDS {
                    notes.push(format!("blocks[{i}].fields: {} fields cut to {MAX_SECTION_FIELDS}", fields.len()));
                    fields.truncate(MAX_SECTION_FIELDS);
                }
                for (j, f) in fields.iter_mut().enumerate() {
                    if let Some(Value::String(t)) = f.get_mut("text") {
                        cut(t, MAX_SECTION_FIELD_CHARS, &format!("blocks[{i}].fields[{j}]"), notes);
                    }
                }
            }
        }
        "header" => {
            if let Some(Value::String(t)) = block.pointer_mut("/text/text") {
                cut(t, MAX_HEADER_CHARS, &format!("blocks[{i}].text"), notes);
            }
        }
        "context" => {
            if let Some(Value::Array(elements)) = block.get_mut("elements") {
                if elements.len() > MAX_CONTEXT_ELEMENTS {
                    notes.push(format!("blocks[{i}].elements cut to {MAX_CONTEXT_ELEMENTS}"));
                    elements.truncate(MAX_CONTEXT_ELEMENTS);
                }
                for e in elements.iter_mut() {
                    if let Some(Value::String(t)) = e.get_mut("text") {
                        cut(t, MAX_CONTEXT_TEXT_CHARS, &format!("blocks[{i}].elements"), notes);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Reads Slack's answer. Success is 200 with body `ok`; errors are plain strings such as
/// `invalid_payload` or `channel_not_found`. A webhook that is gone (404/410: `no_service`,
/// `channel_not_found`, `channel_is_archived`; 401/403 `invalid_token`) marks the channel broken.
/// <https://api.slack.com/messaging/webhooks#handling_errors>
pub fn classify(answer: &Answer) -> Outcome {
    let body = answer.body.trim();
    let reason = format!("{} {body}", answer.status);
    match answer.status {
        200..=299 => Outcome::Delivered,
        429 => Outcome::RateLimited { after: answer.retry_after_header(), reason },
        500..=599 => Outcome::Retry { after: answer.retry_after_header(), reason },
        404 | 410 => Outcome::Permanent { reason, broken: true },
        _ if BROKEN_ANSWERS.contains(&body) => Outcome::Permanent { reason, broken: true },
        _ => Outcome::Permanent { reason, broken: false },
    }
}

/// Slack error strings meaning the webhook itself no longer works.
const BROKEN_ANSWERS: [&str; 5] =
    ["no_service", "channel_not_found", "channel_is_archived", "invalid_token", "no_team"];

/// Merges the next coalescible post into `into` when the result stays within Slack's limits:
/// blocks are appended, `text` fallbacks joined by a newline. Both must agree on every other key.
pub fn merge(into: &mut Value, next: &Value) -> bool {
    let (Some(a), Some(b)) = (into.as_object(), next.as_object()) else { return false };
    let others = |m: &Map<String, Value>| {
        m.iter()
            .filter(|(k, _)| *k != "text" && *k != "blocks")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    if others(a) != others(b) {
        return false;
    }
    let blocks = |m: &Map<String, Value>| m.get("blocks").and_then(Value::as_array).cloned().unwrap_or_default();
    let (mut blocks_a, blocks_b) = (blocks(a), blocks(b));
    if blocks_a.len() + blocks_b.len() > MAX_BLOCKS {
        return false;
    }
    let text = match (a.get("text").and_then(Value::as_str), b.get("text").and_then(Value::as_str)) {
        (Some(x), Some(y)) => Some(format!("{x}\n{y}")),
        (x, y) => x.or(y).map(str::to_owned),
    };
    if text.as_deref().is_some_and(|t| text::chars(t) > MAX_TEXT_CHARS) {
        return false;
    }
    blocks_a.extend(blocks_b);
    let obj = into.as_object_mut().expect("checked above");
    if let Some(t) = text {
        obj.insert("text".into(), Value::String(t));
    }
    if !blocks_a.is_empty() {
        obj.insert("blocks".into(), Value::Array(blocks_a));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escape_neutralises_mentions_and_links() {
        assert_eq!(
            escape("<!channel> & <@U123> <https://x|y>"),
            "&lt;!channel&gt; &amp; &lt;@U123&gt; &lt;https://x|y&gt;"
        );
    }

    #[test]
    fn fit_cuts_long_text_and_splits_blocks() {
        let section = json!({"type":"section","text":{"type":"mrkdwn","text":"x".repeat(5000)}});
        let body = json!({"text": "t", "blocks": vec![section; 120]});
        let fitted = fit(body).unwrap();
        assert_eq!(fitted.posts.len(), 3);
        assert_eq!(fitted.posts[2]["blocks"].as_array().unwrap().len(), 20);
        for post in &fitted.posts {
            assert_eq!(post["text"], "t");
            for b in post["blocks"].as_array().unwrap() {
                assert_eq!(text::chars(b["text"]["text"].as_str().unwrap()), MAX_SECTION_TEXT_CHARS);
            }
        }
        assert!(fitted.notes.iter().any(|n| n.contains("split across 3 posts")));
    }

    #[test]
    fn merging_appends_blocks_in_order_up_to_the_limit() {
        let post = |i: usize| json!({"text": format!("t{i}"), "blocks": [{"type": "context"}, {"type": "section", "text": {"type": "mrkdwn", "text": format!("m{i}")}}]});
        let mut merged = post(0);
        let mut n = 1;
        while merge(&mut merged, &post(n)) {
            n += 1;
        }
        assert_eq!(n, MAX_BLOCKS / 2);
        let texts: Vec<&str> =
            merged["blocks"].as_array().unwrap().iter().filter_map(|b| b["text"]["text"].as_str()).collect();
        assert_eq!(texts, (0..n).map(|i| format!("m{i}")).collect::<Vec<_>>());
        assert!(merged["text"].as_str().unwrap().starts_with("t0\nt1\n"));
    }

    #[test]
    fn fit_rejects_empty_messages() {
        assert!(fit(json!({"text": "  "})).is_err());
        assert!(fit(json!([])).is_err());
        assert!(fit(json!({"blocks": "x"})).is_err());
    }
}
