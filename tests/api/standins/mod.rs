//! Stand-ins for the platforms, one per platform, each answering as the platform documents it
//! (the pages are named in each file). Every test that talks to a platform uses these, so a
//! feature is tested against the same answers as the rest.

pub mod beyond_presence;
pub mod discord;
pub mod google_chat;
pub mod http;
pub mod slack;
pub mod teams;

use serde_json::Value;

pub use discord::Discord;
pub use slack::{slack_refusal, SlackApi};

/// Blank text Discord refuses: an empty message (50006), or blank embed text (50035).
pub fn discord_refusal(body: &Value) -> Option<String> {
    let blank = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| s.trim().is_empty());
    let embeds = body.get("embeds").and_then(Value::as_array).cloned().unwrap_or_default();
    let content = body.get("content").and_then(Value::as_str).unwrap_or("");
    if content.trim().is_empty() && embeds.is_empty() {
        return Some("50006: Cannot send an empty message".into());
    }
    for e in &embeds {
        let fields = e.get("fields").and_then(Value::as_array).cloned().unwrap_or_default();
        if ["/title", "/description", "/footer/text", "/author/name"].iter().any(|p| blank(e.pointer(p)))
            || fields.iter().any(|f| blank(f.get("name")) || blank(f.get("value")))
        {
            return Some(format!("50035: Invalid Form Body (blank text in {e})"));
        }
    }
    None
}
