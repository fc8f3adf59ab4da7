//! The console's preview of a request to an HTTP endpoint: the method, the Standard Webhooks
//! headers (the signature shown redacted), and the body as sent.

use maud::{html, Markup};
use serde_json::Value;

use super::channel::Endpoint;

/// One request as the endpoint receives it (`endpoint`: the channel's, unless it is disabled):
/// its URL's scheme and host, every header (secret values and the signature redacted), the body.
pub fn request(endpoint: Option<&Endpoint>, body: &Value) -> Markup {
    let url = endpoint.map_or("(the channel's url: its variable is unset)".to_owned(), |e| e.url.redacted());
    let signatures = endpoint.map_or(0, |e| e.signing_keys.len());
    html! {
        div.http {
            div.line { "POST " span.url { (url) } }
            div.headers {
                div { "Content-Type: application/json" }
                div { "webhook-id: msg_… (the same on every attempt of this post)" }
                div { "webhook-timestamp: (the attempt's time, Unix seconds)" }
                @if signatures > 0 { div { "webhook-signature: " (vec!["v1,(redacted)"; signatures].join(" ")) } }
                @for (name, _) in endpoint.map(|e| e.headers.as_slice()).unwrap_or_default() { div { (name) ": (secret)" } }
            }
            pre.body { (serde_json::to_string_pretty(body).unwrap_or_default()) }
        }
    }
}
