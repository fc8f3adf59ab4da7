//! Teams' look-alike preview for the console: an Adaptive Card's text blocks (weight, size,
//! subtle), fact sets, containers and column sets, with Teams' Markdown-lite.

use maud::{html, Markup};
use regex::Regex;
use serde_json::Value;

use crate::platforms::preview::{inline, styled, text};

/// One post as Teams would show it.
pub fn teams(body: &Value) -> Markup {
    let cards = body.get("attachments").and_then(Value::as_array).cloned().unwrap_or_default();
    html! {
        div.teams {
            div.who { span.app { "Workflows" } span.badge { "via callrelay" } }
            @for card in &cards {
                div.card { @for e in card.pointer("/content/body").and_then(Value::as_array).into_iter().flatten() { (element(e)) } }
            }
        }
    }
}

fn element(e: &Value) -> Markup {
    match text(e, "type") {
        "TextBlock" => {
            let class = format!(
                "textblock{}{}",
                if text(e, "weight").eq_ignore_ascii_case("bolder") { " bold" } else { "" },
                if e.get("isSubtle").and_then(Value::as_bool) == Some(true) { " subtle" } else { "" }
            );
            html! { div class=(class) { (markdown(text(e, "text"))) } }
        }
        "FactSet" => html! {
            dl.facts { @for f in e.get("facts").and_then(Value::as_array).into_iter().flatten() {
                dt { (text(f, "title")) } dd { (markdown(text(f, "value"))) }
            } }
        },
        "Container" => {
            html! { div.container { @for c in e.get("items").and_then(Value::as_array).into_iter().flatten() { (element(c)) } } }
        }
        "ColumnSet" => html! {
            div.columns { @for col in e.get("columns").and_then(Value::as_array).into_iter().flatten() {
                div.column { @for c in col.get("items").and_then(Value::as_array).into_iter().flatten() { (element(c)) } }
            } }
        },
        other => html! { div.unknown { "(a " (other) " element)" } },
    }
}

/// Teams' Markdown-lite: bold, italic, links, line breaks.
fn markdown(s: &str) -> Markup {
    static TOKENS: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = TOKENS.get_or_init(|| {
        Regex::new(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)|\*\*([^*\n]+)\*\*|_([^_\n]+)_|`([^`\n]+)`|~~([^~\n]+)~~|\n")
            .expect("valid")
    });
    inline(
        re,
        s,
        |c| {
            if let (Some(label), Some(url)) = (c.get(1), c.get(2)) {
                return html! { a href=(url.as_str()) rel="noopener noreferrer" { (label.as_str()) } };
            }
            styled(c, &[3, 4, 5, 6], str::to_owned)
        },
        str::to_owned,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cards_are_drawn_and_hostile_text_stays_text() {
        let body = json!({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
            "content": {"type": "AdaptiveCard", "body": [
                {"type": "TextBlock", "text": "**Call ended** <at>Everyone</at> <script>x</script>", "weight": "Bolder"},
                {"type": "FactSet", "facts": [{"title": "Caller", "value": "Ann"}]}]}}]});
        let html = teams(&body).into_string();
        assert!(html.contains("<strong>Call ended</strong>") && html.contains("textblock bold"), "{html}");
        assert!(html.contains("&lt;at&gt;Everyone&lt;/at&gt;") && !html.contains("<script"), "{html}");
        assert!(html.contains("<dt>Caller</dt><dd>Ann</dd>"), "{html}");
    }
}
