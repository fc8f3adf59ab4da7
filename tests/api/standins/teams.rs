//! A stand-in for a Microsoft Teams Workflows webhook ("post to a channel when a webhook request
//! is received"), answering as Microsoft documents it.
//!
//! - Success is `202 Accepted` with an empty body: the flow runs after the answer
//!   (<https://learn.microsoft.com/en-us/power-automate/teams/teams-app-create#webhook-requests>).
//! - The body is `{"type": "message", "attachments": [{"contentType":
//!   "application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard", …}}]}`
//!   (<https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using>);
//!   anything else is `400` with Logic Apps' JSON error (`{"error": {"code", "message"}}`).
//! - A payload over 28 KB is refused with `413` (the same page: "the message size limit is 28 KB").
//! - A mention needs an `msteams.entities` entry naming it; `<at>…</at>` without one is plain text
//!   (<https://learn.microsoft.com/en-us/microsoftteams/platform/task-modules-and-cards/cards/cards-format#mention-support-within-adaptive-cards>):
//!   [`Teams::mentions`] counts the entities a body would have turned into pings.
//!
//! Tests put failures in front of these answers with [`Teams::answer_first`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Where the stand-in's webhook listens (a Workflows URL carries its signature in the query).
pub const PATH: &str = "/workflows/abc123/triggers/manual/paths/invoke";

#[derive(Default)]
struct State {
    accepted: Vec<Value>,
    first: VecDeque<ResponseTemplate>,
    requests: usize,
    mentions: usize,
}

/// The stand-in; clones share one webhook.
#[derive(Clone, Default)]
pub struct Teams(Arc<Mutex<State>>);

impl Teams {
    /// Mounts it at [`PATH`] on `server`.
    pub async fn mount(server: &MockServer) -> Teams {
        let standin = Teams::default();
        Mock::given(method("POST")).and(path(PATH)).respond_with(standin.clone()).mount(server).await;
        standin
    }

    /// Answers these first, one per request, before answering by the rules again.
    pub fn answer_first(&self, answers: impl IntoIterator<Item = ResponseTemplate>) {
        self.0.lock().unwrap().first.extend(answers);
    }

    /// The cards accepted, in order.
    pub fn accepted(&self) -> Vec<Value> {
        self.0.lock().unwrap().accepted.clone()
    }

    /// Requests answered, refused ones included.
    pub fn requests(&self) -> usize {
        self.0.lock().unwrap().requests
    }

    /// Mention entities the accepted posts carried (each would have pinged someone).
    pub fn mentions(&self) -> usize {
        self.0.lock().unwrap().mentions
    }
}

fn invalid(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({"error": {"code": "InvalidRequestContent", "message": message}}))
}

fn entities(v: &Value) -> usize {
    match v {
        Value::Object(m) => {
            let here = m.get("msteams").and_then(|t| t.get("entities")).and_then(Value::as_array).map_or(0, Vec::len);
            here + m.values().map(entities).sum::<usize>()
        }
        Value::Array(items) => items.iter().map(entities).sum(),
        _ => 0,
    }
}

impl Respond for Teams {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        s.requests += 1;
        if let Some(first) = s.first.pop_front() {
            return first;
        }
        if request.body.len() > 28 * 1024 {
            return ResponseTemplate::new(413).set_body_json(
                json!({"error": {"code": "RequestEntityTooLarge", "message": "The request is larger than 28 KB."}}),
            );
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return invalid("The request content is not valid JSON.");
        };
        if body["type"] != "message" {
            return invalid("The property 'type' must be 'message'.");
        }
        let attachments = body["attachments"].as_array().cloned().unwrap_or_default();
        let cards = attachments.iter().all(|a| {
            a["contentType"] == "application/vnd.microsoft.card.adaptive" && a["content"]["type"] == "AdaptiveCard"
        });
        if attachments.is_empty() || !cards {
            return invalid("The attachments must be Adaptive Cards.");
        }
        s.mentions += entities(&body);
        s.accepted.push(body);
        ResponseTemplate::new(202)
    }
}
