//! A stand-in for a user's HTTP endpoint (a CRM, a workflow tool): it verifies each request's
//! Standard Webhooks signature with the reference implementation (the `standardwebhooks` crate,
//! <https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>)
//! and records what arrived. It answers 204, as such receivers commonly do; tests put other
//! answers first with [`Endpoint::answer_first`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Where the endpoint listens.
pub const PATH: &str = "/crm/hooks/callrelay";

/// One request as the endpoint saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    /// Whether the signature verified with the endpoint's secret.
    pub verified: bool,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The body.
    pub body: Value,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    first: VecDeque<ResponseTemplate>,
}

/// The stand-in, verifying with `secret`; clones share it.
#[derive(Clone)]
pub struct Endpoint {
    state: Arc<Mutex<State>>,
    secret: String,
}

impl Endpoint {
    /// Mounts it at [`PATH`] on `server`, verifying with `secret` (`whsec_…`).
    pub async fn mount(server: &MockServer, secret: &str) -> Endpoint {
        let standin = Endpoint { state: Arc::default(), secret: secret.to_owned() };
        Mock::given(method("POST")).and(path(PATH)).respond_with(standin.clone()).mount(server).await;
        standin
    }

    /// Answers these first, one per request, before answering 204 again.
    pub fn answer_first(&self, answers: impl IntoIterator<Item = ResponseTemplate>) {
        self.state.lock().unwrap().first.extend(answers);
    }

    /// Every request, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

impl Respond for Endpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let verified = standardwebhooks::Webhook::new(&self.secret)
            .is_ok_and(|w| w.verify(&request.body, &request.headers).is_ok());
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut s = self.state.lock().unwrap();
        s.received.push(Received {
            id: header("webhook-id").unwrap_or_default(),
            verified,
            authorization: header("authorization"),
            body: serde_json::from_slice(&request.body).unwrap_or(Value::Null),
        });
        s.first.pop_front().unwrap_or_else(|| ResponseTemplate::new(204))
    }
}
