//! The console's preview of a request to an HTTP endpoint: the method, the Standard Webhooks
//! headers (the signature shown redacted), and the body as sent.

use maud::{html, Markup};
use serde_json::Value;

/// One request as the endpoint receives it.
pub fn request(body: &Value) -> Markup {
    html! {
        div.http {
            div.line { "POST " span.url { "(the channel's url)" } }
            div.headers {
                div { "Content-Type: application/json" }
                div { "webhook-id: msg_… (the same on every attempt of this post)" }
                div { "webhook-timestamp: (the attempt's time, Unix seconds)" }
                div { "webhook-signature: v1,… (per signing secret; redacted)" }
            }
            pre.body { (serde_json::to_string_pretty(body).unwrap_or_default()) }
        }
    }
}
