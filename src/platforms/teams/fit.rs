//! Teams' message rules, whatever a template wrote: a `message` carrying Adaptive Cards, no
//! mention entities (so no caller text can ever become a mention), and the payload limit, met by
//! splitting a card's body across several posts in order and cutting a text too long for a post of
//! its own.
//!
//! References: <https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using>
//! (the 28 KB limit), <https://learn.microsoft.com/en-us/microsoftteams/platform/task-modules-and-cards/cards/cards-format#mention-support-within-adaptive-cards>
//! (`<at>` is a mention only with a matching `msteams.entities` entry).

use serde_json::{json, Map, Value};

use crate::platforms::{Fitted, Refused};
use crate::text;

/// The largest payload a Teams webhook takes: 28 KB.
pub const MAX_PAYLOAD_BYTES: usize = 28 * 1024;
/// What a card's body may take up in one post, leaving room for the envelope around it.
const MAX_BODY_BYTES: usize = MAX_PAYLOAD_BYTES - 1024;
/// The Adaptive Card content type Workflows expect.
pub const CARD_CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";

/// Whether a body carries mention entities anywhere.
pub fn has_entities(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.get("msteams").and_then(|t| t.get("entities")).is_some() || m.values().any(has_entities),
        Value::Array(items) => items.iter().any(has_entities),
        _ => false,
    }
}

/// Makes a rendered body a Teams message within the limit: refuses mention entities and anything
/// but Adaptive Cards; a card too large is split (its body's elements, in order) across posts of
/// the same card around them; an element too large for a post of its own has its text cut.
pub fn fit(body: Value) -> Result<Fitted, Refused> {
    if has_entities(&body) {
        return Err(Refused {
            message: "`msteams.entities` would turn text into mentions; Teams channels post no mentions".into(),
            key: Some("msteams"),
        });
    }
    let Value::Object(top) = body else { return Err("a Teams body must be a JSON object".into()) };
    if top.get("type").and_then(Value::as_str) != Some("message") {
        return Err(Refused { message: "a Teams body must have `\"type\": \"message\"`".into(), key: Some("type") });
    }
    let Some(Value::Array(attachments)) = top.get("attachments") else {
        return Err(Refused {
            message: "a Teams body needs `attachments` (an Adaptive Card)".into(),
            key: Some("attachments"),
        });
    };
    if attachments.is_empty()
        || attachments.iter().any(|a| a.get("contentType").and_then(Value::as_str) != Some(CARD_CONTENT_TYPE))
    {
        return Err(Refused {
            message: format!("each attachment must be an Adaptive Card (`contentType` `{CARD_CONTENT_TYPE}`)"),
            key: Some("contentType"),
        });
    }
    let whole = Value::Object(top.clone());
    if whole.to_string().len() <= MAX_PAYLOAD_BYTES {
        return Ok(Fitted { posts: vec![whole], notes: Vec::new() });
    }
    let mut notes = Vec::new();
    let mut posts = Vec::new();
    for attachment in attachments {
        let elements = attachment.pointer("/content/body").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut group: Vec<Value> = Vec::new();
        let mut size = 0;
        for mut element in elements {
            let mut n = element.to_string().len();
            if n > MAX_BODY_BYTES {
                text::cut_longest_string(&mut element, MAX_BODY_BYTES, None);
                notes.push("a card element's text cut to fit 28 KB".to_owned());
                n = element.to_string().len();
            }
            if size + n > MAX_BODY_BYTES && !group.is_empty() {
                posts.push(card_post(&top, attachment, std::mem::take(&mut group)));
                size = 0;
            }
            size += n + 1;
            group.push(element);
        }
        posts.push(card_post(&top, attachment, group));
    }
    if posts.len() > 1 {
        notes.push(format!("the card split across {} posts to fit 28 KB", posts.len()));
    }
    Ok(Fitted { posts, notes })
}

/// The message `top` with one attachment: `attachment`'s card with `body` as its body.
fn card_post(top: &Map<String, Value>, attachment: &Value, body: Vec<Value>) -> Value {
    let mut card = attachment.clone();
    card["content"]["body"] = Value::Array(body);
    let mut post = top.clone();
    post.insert("attachments".into(), json!([card]));
    Value::Object(post)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(body: Vec<Value>) -> Value {
        json!({"type": "message", "attachments": [{"contentType": CARD_CONTENT_TYPE,
            "content": {"type": "AdaptiveCard", "version": "1.4", "body": body}}]})
    }

    #[test]
    fn a_card_over_28_kb_is_split_in_order_and_an_element_too_large_is_cut() {
        let lines: Vec<Value> = (0..100)
            .map(|i| json!({"type": "TextBlock", "text": format!("line {i:03} {}", "x".repeat(600))}))
            .collect();
        let fitted = fit(card(lines)).unwrap();
        assert!(fitted.posts.len() >= 3, "{}", fitted.posts.len());
        let mut seen = Vec::new();
        for p in &fitted.posts {
            assert!(p.to_string().len() <= MAX_PAYLOAD_BYTES);
            for e in p["attachments"][0]["content"]["body"].as_array().unwrap() {
                seen.push(e["text"].as_str().unwrap()[..8].to_owned());
            }
        }
        assert_eq!(seen, (0..100).map(|i| format!("line {i:03}")).collect::<Vec<_>>(), "every element, in order");
        let huge = fit(card(vec![json!({"type": "TextBlock", "text": "\"".repeat(40_000)})])).unwrap();
        assert_eq!(huge.posts.len(), 1);
        let size = huge.posts[0].to_string().len();
        assert!((MAX_PAYLOAD_BYTES * 3 / 4..=MAX_PAYLOAD_BYTES).contains(&size), "cut to fit, not to nothing: {size}");
    }

    #[test]
    fn mention_entities_and_other_shapes_are_refused() {
        let mut with_mention = card(vec![json!({"type": "TextBlock", "text": "<at>Everyone</at>"})]);
        with_mention["attachments"][0]["content"]["msteams"] = json!({"entities": [{"type": "mention"}]});
        assert_eq!(fit(with_mention).unwrap_err().key, Some("msteams"));
        assert!(fit(card(vec![json!({"type": "TextBlock", "text": "<at>Everyone</at>"})])).is_ok(), "inert text");
        assert_eq!(fit(json!({"type": "message"})).unwrap_err().key, Some("attachments"));
        assert_eq!(fit(json!({"text": "hi"})).unwrap_err().key, Some("type"));
    }
}
