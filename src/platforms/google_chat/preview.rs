//! Google Chat's look-alike preview for the console: the message's text (with Chat's `*bold*`,
//! `_italic_`, `~strike~`, `` `code` ``) and its cards: header, sections, text paragraphs and
//! decorated texts.

use maud::{html, Markup};
use regex::Regex;
use serde_json::Value;

use crate::platforms::preview::{inline, styled, text};

/// One message as Google Chat would show it.
pub fn google_chat(body: &Value) -> Markup {
    let cards = body.get("cardsV2").and_then(Value::as_array).cloned().unwrap_or_default();
    html! {
        div.gchat {
            div.who { span.app { "callrelay" } span.badge { "App" } }
            @if let Some(t) = body.get("text").and_then(Value::as_str) { div.text { (markup(t)) } }
            @for c in &cards {
                @let card = &c["card"];
                div.card {
                    @if let Some(h) = card.get("header") {
                        div.header { div.title { (text(h, "title")) } @if h.get("subtitle").is_some() { div.subtitle { (text(h, "subtitle")) } } }
                    }
                    @for s in card.get("sections").and_then(Value::as_array).into_iter().flatten() {
                        div.section {
                            @if s.get("header").is_some() { div.section-header { (text(s, "header")) } }
                            @for w in s.get("widgets").and_then(Value::as_array).into_iter().flatten() { (widget(w)) }
                        }
                    }
                }
            }
        }
    }
}

fn widget(w: &Value) -> Markup {
    if let Some(p) = w.get("textParagraph") {
        return html! { div.paragraph { (markup(text(p, "text"))) } };
    }
    if let Some(d) = w.get("decoratedText") {
        return html! { div.decorated { div.label { (text(d, "topLabel")) } div { (markup(text(d, "text"))) } } };
    }
    html! { div.unknown { "(a widget)" } }
}

/// Chat's text formatting: bold, italic, code, strike, line breaks.
fn markup(s: &str) -> Markup {
    static TOKENS: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = TOKENS.get_or_init(|| Regex::new(r"\*([^*\n]+)\*|_([^_\n]+)_|`([^`\n]+)`|~([^~\n]+)~|\n").expect("valid"));
    inline(re, s, |c| styled(c, &[1, 2, 3, 4], str::to_owned), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_cards_are_drawn_and_hostile_text_stays_text() {
        let body = json!({"text": "*Call ended* <script>x</script>", "cardsV2": [{"cardId": "c", "card": {
            "header": {"title": "Account Support", "subtitle": "John"},
            "sections": [{"widgets": [{"decoratedText": {"topLabel": "Caller", "text": "Ann"}}, {"textParagraph": {"text": "hello"}}]}]}}]});
        let html = google_chat(&body).into_string();
        assert!(html.contains("<strong>Call ended</strong>") && !html.contains("<script"), "{html}");
        assert!(html.contains("Account Support") && html.contains("Caller") && html.contains("hello"), "{html}");
    }
}
