//! Slack's look-alike preview for the console: Block Kit header, section (with fields), context,
//! divider, image, and `mrkdwn` (bold, italic, strike, code, links, `&lt;`-style entities).

use maud::{html, Markup};
use regex::Regex;
use serde_json::Value;

use crate::platforms::preview::{inline, styled, text};

/// One post as Slack would show it.
pub fn slack(body: &Value) -> Markup {
    let blocks = body.get("blocks").and_then(Value::as_array).cloned().unwrap_or_default();
    html! {
        div.slack {
            div.who { span.app { "callrelay" } span.badge { "APP" } }
            @if blocks.is_empty() { div.mrkdwn { (slack_mrkdwn(text(body, "text"))) } }
            @for block in &blocks { (slack_block(block)) }
        }
    }
}

fn slack_text(obj: &Value) -> Markup {
    match text(obj, "type") {
        "mrkdwn" => slack_mrkdwn(text(obj, "text")),
        _ => html! { (slack_entities(text(obj, "text"))) },
    }
}

fn slack_block(block: &Value) -> Markup {
    match text(block, "type") {
        "header" => html! { div.header { (slack_entities(text(&block["text"], "text"))) } },
        "divider" => html! { hr; },
        "section" => html! {
            div.section {
                @if let Some(t) = block.get("text") { div.mrkdwn { (slack_text(t)) } }
                @if let Some(fields) = block.get("fields").and_then(Value::as_array) {
                    div.fields { @for f in fields { div.field { (slack_text(f)) } } }
                }
            }
        },
        "context" => html! {
            div.context {
                @for e in block.get("elements").and_then(Value::as_array).into_iter().flatten() {
                    @if text(e, "type") == "image" { span.img { "[image: " (text(e, "alt_text")) "]" } }
                    @else { span { (slack_text(e)) } }
                }
            }
        },
        "image" => html! { div.img { "[image: " (text(block, "alt_text")) "]" } },
        other => html! { div.unknown { "(a " (other) " block)" } },
    }
}

/// Slack's three entities, back to the characters they stand for (maud escapes them again).
fn slack_entities(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

fn slack_mrkdwn(s: &str) -> Markup {
    static TOKENS: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = TOKENS.get_or_init(|| {
        Regex::new(r"<(https?://[^|>\s]+)(?:\|([^>]+))?>|\*([^*\n]+)\*|_([^_\n]+)_|`([^`\n]+)`|~([^~\n]+)~|\n")
            .expect("valid")
    });
    inline(
        re,
        s,
        |c| {
            if let Some(url) = c.get(1) {
                let label = c.get(2).map_or(url.as_str(), |l| l.as_str());
                return html! { a href=(url.as_str()) rel="noopener noreferrer" { (slack_entities(label)) } };
            }
            styled(c, &[3, 4, 5, 6], slack_entities)
        },
        slack_entities,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slack_mrkdwn_is_drawn_and_hostile_text_stays_text() {
        let body = json!({"blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Call &lt;b&gt;ended"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*bold* _it_ `code` ~no~ <https://example.com|site> <img src=x onerror=alert(1)>"}},
            {"type": "divider"},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "&lt;script&gt;alert(1)&lt;/script&gt;"}]}]});
        let html = slack(&body).into_string();
        assert!(
            html.contains("<strong>bold</strong>")
                && html.contains("<em>it</em>")
                && html.contains("<code>code</code>")
        );
        assert!(
            html.contains("<del>no</del>")
                && html.contains(r#"<a href="https://example.com" rel="noopener noreferrer">site</a>"#)
        );
        assert!(html.contains("Call &lt;b&gt;ended"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "not a link: stays text: {html}");
        assert!(html.contains("<hr>"));
    }
}
