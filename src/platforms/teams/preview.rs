//! Teams' look-alike preview for the console: an Adaptive Card's text blocks (weight, size,
//! subtle), fact sets, containers and column sets, with Teams' Markdown-lite.

use maud::{html, Markup};
use serde_json::Value;

use crate::platforms::preview::{markdown, text};

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
