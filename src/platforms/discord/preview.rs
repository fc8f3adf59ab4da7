//! Discord's look-alike preview for the console: content, and embeds with colour bar, author,
//! title, description, inline fields, footer and timestamp, with Discord's markdown.

use maud::{html, Markup};
use serde_json::Value;

use crate::platforms::preview::{markdown, text};

/// One post as Discord would show it.
pub fn discord(body: &Value) -> Markup {
    let embeds = body.get("embeds").and_then(Value::as_array).cloned().unwrap_or_default();
    let name = body.get("username").and_then(Value::as_str).unwrap_or("callrelay");
    html! {
        div.discord {
            div.who { span.app { (name) } span.badge { "BOT" } }
            @if let Some(content) = body.get("content").and_then(Value::as_str) { div.content { (markdown(content)) } }
            @for e in &embeds { (discord_embed(e)) }
        }
    }
}

fn discord_embed(e: &Value) -> Markup {
    let colour = e.get("color").and_then(Value::as_u64).map_or("#1e1f22".to_owned(), |c| format!("#{c:06x}"));
    let fields = e.get("fields").and_then(Value::as_array).cloned().unwrap_or_default();
    html! {
        div.embed {
            // A presentation attribute, not a style: the strict CSP allows it.
            svg.bar width="4" height="100%" preserveAspectRatio="none" viewBox="0 0 4 10" { rect width="4" height="10" fill=(colour) {} }
            div.embed-body {
                @if let Some(a) = e.get("author") { div.author { (text(a, "name")) } }
                @if let Some(t) = e.get("title").and_then(Value::as_str) { div.title { (markdown(t)) } }
                @if let Some(d) = e.get("description").and_then(Value::as_str) { div.description { (markdown(d)) } }
                @if !fields.is_empty() {
                    div.fields {
                        @for f in &fields {
                            div class=(if f.get("inline").and_then(Value::as_bool).unwrap_or(false) { "field inline" } else { "field" }) {
                                div.name { (markdown(text(f, "name"))) }
                                div.value { (markdown(text(f, "value"))) }
                            }
                        }
                    }
                }
                @if e.get("footer").is_some() || e.get("timestamp").is_some() {
                    div.footer {
                        (e.get("footer").map(|f| text(f, "text")).unwrap_or(""))
                        @if let Some(t) = e.get("timestamp").and_then(Value::as_str) { " • " (t) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn discord_embeds_are_drawn_with_their_colour_and_hostile_text_stays_text() {
        let body = json!({"username": "Relay <b>", "content": "**hi** [docs](https://example.com) <script>x</script>", "embeds": [
            {"color": 15158332, "title": "T", "description": "*d*", "fields": [{"name": "A", "value": "1", "inline": true}],
             "footer": {"text": "f"}, "timestamp": "2024-01-15T10:30:00Z"}]});
        let html = discord(&body).into_string();
        assert!(html.contains(r##"fill="#e74c3c""##), "{html}");
        assert!(html.contains("<strong>hi</strong>") && html.contains("field inline") && html.contains("f • 2024"));
        assert!(
            html.contains("&lt;script&gt;") && !html.contains("<script") && html.contains("Relay &lt;b&gt;"),
            "{html}"
        );
    }
}
