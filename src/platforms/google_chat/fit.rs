//! Google Chat's message rules, whatever a template wrote: `text` and/or `cardsV2`, caller text
//! that can never mention anyone or form a link, and the 32,000-byte limit, met by splitting the
//! card's sections across several messages in order and cutting a text too long for one.
//!
//! References: <https://developers.google.com/workspace/chat/format-messages> (`<users/…>`
//! mentions, `<url|text>` links), <https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages>
//! (`text`, `cardsV2`, 32,000 bytes).

use serde_json::{json, Map, Value};

use crate::platforms::{blank, Fitted, Refused, NO_TEXT};
use crate::text;

/// The largest message Google Chat takes, in bytes (`text` and cards together).
pub const MAX_MESSAGE_BYTES: usize = 32_000;
/// Characters kept of a card's header title and subtitle, and of a section's header: labels, not
/// text (the split card repeats its header in every message).
pub const MAX_LABEL_CHARS: usize = 300;
/// A zero-width space: after `<`, it keeps `<users/all>` or `<https://…|…>` from being read as a
/// mention or a link, while the text reads the same.
const BREAK: char = '\u{200B}';

/// Escapes text for Google Chat: every `<` is followed by a zero-width space, so no caller text
/// forms a mention (`<users/all>`) or a link (`<url|label>`).
pub fn escape(s: &str) -> String {
    s.replace('<', &format!("<{BREAK}"))
}

/// What one character counts once escaped.
pub fn escaped_len(c: char) -> usize {
    if c == '<' {
        2
    } else {
        1
    }
}

/// A mention in any string of a body, if one is there.
pub fn mention(v: &Value) -> Option<String> {
    text::strings(v).into_iter().find(|s| s.contains("<users/")).map(|s| text::truncate(s, 40))
}

/// Makes a rendered body a Google Chat message within the limit.
pub fn fit(body: Value) -> Result<Fitted, Refused> {
    let Value::Object(mut top) = body else { return Err("a Google Chat body must be a JSON object".into()) };
    let has_cards = top.get("cardsV2").and_then(Value::as_array).is_some_and(|c| !c.is_empty());
    match top.get("text") {
        Some(Value::String(t)) if blank(t) && !has_cards => {
            top.insert("text".into(), json!(NO_TEXT));
        }
        Some(Value::String(t)) if blank(t) => {
            top.remove("text");
        }
        None if !has_cards => {
            return Err(Refused { message: "a Google Chat body needs `text` or `cardsV2`".into(), key: Some("text") })
        }
        Some(Value::String(_)) | None => {}
        Some(_) => return Err(Refused { message: "`text` must be a string".into(), key: Some("text") }),
    }
    let mut notes = Vec::new();
    let mut cut_label = |t: &mut Value| {
        if let Value::String(t) = t {
            if text::chars(t) > MAX_LABEL_CHARS {
                *t = text::truncate(t, MAX_LABEL_CHARS);
                notes.push(format!("a card label cut to {MAX_LABEL_CHARS} characters"));
            }
        }
    };
    for card in top.get_mut("cardsV2").and_then(Value::as_array_mut).into_iter().flatten() {
        for pointer in ["/card/header/title", "/card/header/subtitle"] {
            if let Some(t) = card.pointer_mut(pointer) {
                cut_label(t);
            }
        }
        for section in card.pointer_mut("/card/sections").and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(t) = section.get_mut("header") {
                cut_label(t);
            }
        }
    }
    // The text alone may take half the message (escaped as JSON).
    if let Some(t) = top.get_mut("text") {
        if text::cut_longest_string(t, MAX_MESSAGE_BYTES / 2, None) {
            notes.push("text cut to fit 32,000 bytes".into());
        }
    }
    let whole = Value::Object(top.clone());
    // Room for what the sink adds (the thread's key).
    if whole.to_string().len() <= MAX_MESSAGE_BYTES - 1024 {
        return Ok(Fitted { posts: vec![whole], notes });
    }
    // Split the first card's sections across messages (the text goes with the first).
    let Some(card) = top.get("cardsV2").and_then(|c| c.get(0)).cloned() else {
        return Ok(Fitted { posts: vec![whole], notes });
    };
    // Cards beyond the first are dropped: the relay's templates write one.
    if top.get("cardsV2").and_then(Value::as_array).is_some_and(|c| c.len() > 1) {
        notes.push("cards after the first dropped to fit 32,000 bytes".into());
    }
    let sections = card.pointer("/card/sections").and_then(Value::as_array).cloned().unwrap_or_default();
    let budget = MAX_MESSAGE_BYTES - 3072;
    let mut posts: Vec<Value> = Vec::new();
    let mut group: Vec<Value> = Vec::new();
    let mut size = top.get("text").map_or(0, |t| t.to_string().len());
    for mut section in sections {
        let mut n = section.to_string().len();
        if size + n > budget && !group.is_empty() {
            posts.push(message(&top, &card, std::mem::take(&mut group), posts.is_empty()));
            size = 0;
        }
        // Alone in its message (after the text, in the first) and still too large: cut.
        if size + n > budget {
            text::cut_longest_string(&mut section, budget - size, None);
            notes.push("a card section's text cut to fit 32,000 bytes".into());
            n = section.to_string().len();
        }
        size += n + 1;
        group.push(section);
    }
    posts.push(message(&top, &card, group, posts.is_empty()));
    if posts.len() > 1 {
        notes.push(format!("the card split across {} messages to fit 32,000 bytes", posts.len()));
    }
    Ok(Fitted { posts, notes })
}

/// A message with `card` holding `sections`; the first keeps the body's `text`.
fn message(top: &Map<String, Value>, card: &Value, sections: Vec<Value>, first: bool) -> Value {
    let mut card = card.clone();
    card["card"]["sections"] = Value::Array(sections);
    let mut post = top.clone();
    if !first {
        post.remove("text");
    }
    post.insert("cardsV2".into(), json!([card]));
    Value::Object(post)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_text_never_mentions_or_links() {
        let escaped = escape("<users/all> hi <users/123> <https://evil.example|click>");
        assert!(!escaped.contains("<users/") && !escaped.contains("<https://"), "{escaped:?}");
        assert_eq!(
            escaped.replace(BREAK, ""),
            "<users/all> hi <users/123> <https://evil.example|click>",
            "reads the same"
        );
        assert!(mention(&json!({"text": "<users/all>"})).is_some());
        assert!(mention(&json!({"text": escaped})).is_none());
    }

    #[test]
    fn a_message_over_32000_bytes_is_split_by_sections_in_order() {
        let sections: Vec<Value> = (0..40)
            .map(|i| json!({"widgets": [{"textParagraph": {"text": format!("section {i:02} {}", "x".repeat(2000))}}]}))
            .collect();
        let body = json!({"text": "Call ended", "cardsV2": [{"cardId": "c", "card": {"header": {"title": "T"}, "sections": sections}}]});
        let fitted = fit(body).unwrap();
        assert!(fitted.posts.len() >= 3, "{}", fitted.posts.len());
        assert_eq!(fitted.posts[0]["text"], "Call ended");
        assert!(fitted.posts[1].get("text").is_none(), "the text goes with the first message only");
        let mut seen = Vec::new();
        for p in &fitted.posts {
            assert!(p.to_string().len() <= MAX_MESSAGE_BYTES);
            for s in p["cardsV2"][0]["card"]["sections"].as_array().unwrap() {
                seen.push(s["widgets"][0]["textParagraph"]["text"].as_str().unwrap()[..10].to_owned());
            }
        }
        assert_eq!(seen, (0..40).map(|i| format!("section {i:02}")).collect::<Vec<_>>());
        assert_eq!(fit(json!({"text": " "})).unwrap().posts[0]["text"], NO_TEXT);
        let quoted = fit(json!({"text": "\"é".repeat(20_000)})).unwrap();
        assert!(quoted.posts[0].to_string().len() <= MAX_MESSAGE_BYTES - 1024, "escaping counted");
        assert!(fit(json!({})).is_err());
    }
}
