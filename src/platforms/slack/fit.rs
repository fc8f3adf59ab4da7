//! Slack's message rules, for webhooks and the app alike: escaping, Block Kit limits, mention
//! safety and blank text whatever a template wrote; splitting and merging posts within them.
//!
//! References: <https://api.slack.com/reference/surfaces/formatting#escaping>,
//! <https://api.slack.com/reference/block-kit/blocks>.

use serde_json::{Map, Value};

use crate::platforms::{blank, cut, Fitted, Refused, NO_TEXT};
use crate::text;

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

/// Makes a rendered body safe and within Slack's limits, whatever the template wrote:
///
/// - every `mrkdwn` text object, anywhere (blocks, fields, context elements, attachments), gets
///   `verbatim: true`, so Slack does not turn a caller's bare `@here`, `@channel`, `@everyone` or
///   `#channel` into a notification or link (escaping alone stops only `<!here>`-style syntax);
/// - a body asking Slack to parse names itself (`link_names`, `parse: "full"`) or using a
///   `markdown` block (which has no verbatim switch) is refused;
/// - an empty or blank text object, header or field becomes [`NO_TEXT`] (Slack refuses empty ones);
/// - over-long text is cut with `…`, and more than [`MAX_BLOCKS`] blocks are split across several
///   posts (in order, each repeating `text`).
pub fn fit(body: Value) -> Result<Fitted, Refused> {
    let Value::Object(mut top) = body else {
        return Err("a Slack body must be a JSON object".into());
    };
    refuse_parsing(&top)?;
    let mut notes = Vec::new();
    for value in top.values_mut() {
        secure_text_objects(value)?;
    }
    if let Some(Value::String(t)) = top.get_mut("text") {
        cut(t, MAX_TEXT_CHARS, "text", &mut notes);
    }
    let blocks = match top.remove("blocks") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(b)) => b,
        Some(_) => return Err("`blocks` must be an array".into()),
    };
    let has_text = top.get("text").and_then(Value::as_str).is_some_and(|t| !blank(t));
    let has_attachments = top.get("attachments").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    if !has_text {
        if blocks.is_empty() && !has_attachments {
            top.insert("text".into(), Value::String(NO_TEXT.into()));
        } else {
            top.remove("text");
        }
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

/// Refuses the top-level arguments that make Slack link bare names in `text` and attachment text.
/// <https://docs.slack.dev/messaging/formatting-message-text#automatic-parsing>
fn refuse_parsing(top: &Map<String, Value>) -> Result<(), Refused> {
    let why = "makes Slack turn a caller's bare @here, @channel or @everyone into a notification; remove it";
    if top.get("link_names").is_some_and(truthy) {
        return Err(Refused { message: format!("`link_names` {why}"), key: Some("link_names") });
    }
    if top.get("parse").and_then(Value::as_str).is_some_and(|p| p.trim().eq_ignore_ascii_case("full")) {
        return Err(Refused { message: format!("`parse: \"full\"` {why}"), key: Some("parse") });
    }
    Ok(())
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !matches!(s.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"),
        _ => true,
    }
}

/// Walks the whole body: `mrkdwn` text objects become verbatim, blank text objects get
/// [`NO_TEXT`], and `markdown` blocks are refused.
/// <https://docs.slack.dev/reference/block-kit/composition-objects/text-object>
fn secure_text_objects(v: &mut Value) -> Result<(), Refused> {
    match v {
        Value::Object(map) => {
            let kind = map.get("type").and_then(Value::as_str).unwrap_or("");
            let (mrkdwn, text_object) = (kind == "mrkdwn", kind == "mrkdwn" || kind == "plain_text");
            if kind == "markdown" {
                return Err(Refused {
                    message: "a `markdown` block has no verbatim switch, so a caller's @here would notify; use \
                              a section with a `mrkdwn` text object"
                        .into(),
                    key: Some("markdown"),
                });
            }
            if text_object {
                if let Some(Value::String(t)) = map.get_mut("text") {
                    if blank(t) {
                        *t = NO_TEXT.into();
                    }
                }
            }
            if mrkdwn {
                map.insert("verbatim".into(), Value::Bool(true));
            }
            map.values_mut().try_for_each(secure_text_objects)
        }
        Value::Array(items) => items.iter_mut().try_for_each(secure_text_objects),
        _ => Ok(()),
    }
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
    fn fit_refuses_malformed_bodies() {
        assert!(fit(json!([])).is_err());
        assert!(fit(json!({"blocks": "x"})).is_err());
    }

    #[test]
    fn empty_text_becomes_a_visible_mark_never_an_empty_text_object() {
        assert_eq!(fit(json!({"text": "  "})).unwrap().posts, vec![json!({"text": NO_TEXT})]);
        let body = json!({"text": "", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": ""}},
            {"type": "section", "text": {"type": "mrkdwn", "text": " \n "}, "fields": [{"type": "mrkdwn", "text": ""}]},
            {"type": "context", "elements": [{"type": "plain_text", "text": "\t"}, {"type": "image", "image_url": "https://x/y.png", "alt_text": "i"}]}
        ]});
        let post = &fit(body).unwrap().posts[0];
        assert!(post.get("text").is_none(), "blank fallback text is dropped when blocks carry the message");
        assert_eq!(post["blocks"][0]["text"]["text"], NO_TEXT);
        assert_eq!(post["blocks"][1]["text"]["text"], NO_TEXT);
        assert_eq!(post["blocks"][1]["fields"][0]["text"], NO_TEXT);
        assert_eq!(post["blocks"][2]["elements"][0]["text"], NO_TEXT);
        assert!(post["blocks"][2]["elements"][1].get("text").is_none());
    }

    #[test]
    fn every_mrkdwn_object_is_made_verbatim_wherever_it_is() {
        let body = json!({"text": "x", "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "@here", "verbatim": false},
             "fields": [{"type": "mrkdwn", "text": "@channel"}, {"type": "plain_text", "text": "p"}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "@everyone"}]}
        ], "attachments": [{"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "#general"}}]}]});
        let post = &fit(body).unwrap().posts[0];
        assert_eq!(post["blocks"][0]["text"]["verbatim"], true);
        assert_eq!(post["blocks"][0]["fields"][0]["verbatim"], true);
        assert!(post["blocks"][0]["fields"][1].get("verbatim").is_none(), "plain_text takes no verbatim");
        assert_eq!(post["blocks"][1]["elements"][0]["verbatim"], true);
        assert_eq!(post["attachments"][0]["blocks"][0]["text"]["verbatim"], true);
    }

    #[test]
    fn bodies_asking_slack_to_parse_names_are_refused() {
        for (body, key) in [
            (json!({"text": "x", "link_names": 1}), "link_names"),
            (json!({"text": "x", "link_names": true}), "link_names"),
            (json!({"text": "x", "link_names": "1"}), "link_names"),
            (json!({"text": "x", "parse": "full"}), "parse"),
            (json!({"blocks": [{"type": "markdown", "text": "@here"}]}), "markdown"),
        ] {
            assert_eq!(fit(body.clone()).unwrap_err().key, Some(key), "{body}");
        }
        assert!(fit(json!({"text": "x", "link_names": 0, "parse": "none"})).is_ok());
    }
}
