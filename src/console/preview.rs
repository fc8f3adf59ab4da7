//! Look-alike previews: a body as Slack or Discord would draw it. Slack: Block Kit header,
//! section (with fields), context, divider, image, and `mrkdwn` (bold, italic, strike, code,
//! links, `&lt;`-style entities). Discord: content, and embeds with colour bar, author, title,
//! description, inline fields, footer and timestamp, with Discord's markdown. Every piece of text
//! goes through maud, which escapes it: a body can never inject markup into the console.

use maud::{html, Markup, PreEscaped};
use regex::Regex;
use serde_json::Value;

use crate::config::Platform;

/// One post as the platform would show it.
pub fn post(platform: Platform, body: &Value) -> Markup {
    match platform {
        Platform::Slack => slack(body),
        Platform::Discord => discord(body),
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn slack(body: &Value) -> Markup {
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

/// Text with inline markup: the pieces between `re`'s matches as plain text (`plain`), each match
/// as `token` draws it.
fn inline(re: &Regex, s: &str, token: impl Fn(&regex::Captures) -> Markup, plain: impl Fn(&str) -> String) -> Markup {
    let mut out = String::new();
    let mut last = 0;
    for c in re.captures_iter(s) {
        let m = c.get(0).expect("a match");
        out.push_str(&html! { (plain(&s[last..m.start()])) }.into_string());
        out.push_str(&if m.as_str() == "\n" { "<br>".to_owned() } else { token(&c).into_string() });
        last = m.end();
    }
    out.push_str(&html! { (plain(&s[last..])) }.into_string());
    PreEscaped(out)
}

/// Bold, italic, code, strike: whichever of the groups `[b, i, code, strike]` matched.
fn styled(c: &regex::Captures, groups: &[usize; 4], plain: impl Fn(&str) -> String) -> Markup {
    let [b, i, code, strike] = groups.map(|g| c.get(g).map(|m| plain(m.as_str())));
    html! {
        @if let Some(t) = b { strong { (t) } }
        @else if let Some(t) = i { em { (t) } }
        @else if let Some(t) = code { code { (t) } }
        @else if let Some(t) = strike { del { (t) } }
    }
}

fn discord_markdown(s: &str) -> Markup {
    static TOKENS: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = TOKENS.get_or_init(|| {
        Regex::new(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)|\*\*([^*\n]+)\*\*|\*([^*\n]+)\*|`([^`\n]+)`|~~([^~\n]+)~~|\n")
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

fn discord(body: &Value) -> Markup {
    let embeds = body.get("embeds").and_then(Value::as_array).cloned().unwrap_or_default();
    let name = body.get("username").and_then(Value::as_str).unwrap_or("callrelay");
    html! {
        div.discord {
            div.who { span.app { (name) } span.badge { "BOT" } }
            @if let Some(content) = body.get("content").and_then(Value::as_str) { div.content { (discord_markdown(content)) } }
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
                @if let Some(t) = e.get("title").and_then(Value::as_str) { div.title { (discord_markdown(t)) } }
                @if let Some(d) = e.get("description").and_then(Value::as_str) { div.description { (discord_markdown(d)) } }
                @if !fields.is_empty() {
                    div.fields {
                        @for f in &fields {
                            div class=(if f.get("inline").and_then(Value::as_bool).unwrap_or(false) { "field inline" } else { "field" }) {
                                div.name { (discord_markdown(text(f, "name"))) }
                                div.value { (discord_markdown(text(f, "value"))) }
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
    fn slack_mrkdwn_is_drawn_and_hostile_text_stays_text() {
        let body = json!({"blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Call &lt;b&gt;ended"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*bold* _it_ `code` ~no~ <https://example.com|site> <img src=x onerror=alert(1)>"}},
            {"type": "divider"},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "&lt;script&gt;alert(1)&lt;/script&gt;"}]}]});
        let html = post(Platform::Slack, &body).into_string();
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

    #[test]
    fn discord_embeds_are_drawn_with_their_colour_and_hostile_text_stays_text() {
        let body = json!({"username": "Relay <b>", "content": "**hi** [docs](https://example.com) <script>x</script>", "embeds": [
            {"color": 15158332, "title": "T", "description": "*d*", "fields": [{"name": "A", "value": "1", "inline": true}],
             "footer": {"text": "f"}, "timestamp": "2024-01-15T10:30:00Z"}]});
        let html = post(Platform::Discord, &body).into_string();
        assert!(html.contains(r##"fill="#e74c3c""##), "{html}");
        assert!(html.contains("<strong>hi</strong>") && html.contains("field inline") && html.contains("f • 2024"));
        assert!(
            html.contains("&lt;script&gt;") && !html.contains("<script") && html.contains("Relay &lt;b&gt;"),
            "{html}"
        );
    }
}
