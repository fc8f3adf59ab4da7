//! The Beyond Presence API, as far as the relay uses it: `GET /v1/calls/{id}` with the key in
//! `x-api-key` (https://docs.bey.dev/api-reference/calls/retrieve-call). Its answer is the page's
//! `CallResponse`: `id`, `agent_id`, `started_at` (ISO 8601), `ended_at` (null while the call may
//! still be ongoing) and `tags` (an object). The page documents 200 and 422 (FastAPI's validation
//! error); a missing or wrong key and an unknown call are answered as FastAPI does by default
//! (`{"detail": …}` with 403 and 404), which the page does not show.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The key the stand-in accepts.
pub const API_KEY: &str = "bey-test-key-S3CRET";

#[derive(Default)]
struct State {
    /// Known calls: id → (agent, tags).
    calls: BTreeMap<String, (String, Value)>,
    /// Answer after this long (a slow API).
    delay: Option<Duration>,
    /// Answer 503 to everything (an API that is down).
    down: bool,
    /// Every request: (path, x-api-key sent).
    requests: Vec<(String, Option<String>)>,
}

/// The stand-in; clones share it.
#[derive(Clone, Default)]
pub struct BeyondPresence(Arc<Mutex<State>>);

impl BeyondPresence {
    /// Mounts it at `/v1/calls/{id}` on `server`.
    pub async fn mount(server: &MockServer) -> BeyondPresence {
        let standin = BeyondPresence::default();
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1/calls/[^/]+$"))
            .respond_with(standin.clone())
            .mount(server)
            .await;
        standin
    }

    /// A call its API knows, handled by `agent`, with `tags`.
    pub fn call(&self, id: &str, agent: &str, tags: Value) -> &Self {
        self.0.lock().unwrap().calls.insert(id.into(), (agent.into(), tags));
        self
    }

    /// Answers only after `delay`.
    pub fn slow(&self, delay: Duration) {
        self.0.lock().unwrap().delay = Some(delay);
    }

    /// Answers 503 to everything.
    pub fn down(&self) {
        self.0.lock().unwrap().down = true;
    }

    /// Every request: (path, the key it carried).
    pub fn requests(&self) -> Vec<(String, Option<String>)> {
        self.0.lock().unwrap().requests.clone()
    }
}

impl Respond for BeyondPresence {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let key = request.headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
        s.requests.push((request.url.path().to_owned(), key.clone()));
        let delay = s.delay.unwrap_or_default();
        if s.down {
            return ResponseTemplate::new(503).set_body_json(json!({"detail": "Service Unavailable"})).set_delay(delay);
        }
        if key.as_deref() != Some(API_KEY) {
            return ResponseTemplate::new(403).set_body_json(json!({"detail": "Not authenticated"})).set_delay(delay);
        }
        let id = request.url.path().rsplit('/').next().unwrap_or("").to_owned();
        match s.calls.get(&id) {
            Some((agent, tags)) => ResponseTemplate::new(200)
                .set_body_json(json!({"id": id, "agent_id": agent, "started_at": "2024-01-15T10:29:58.120000Z",
                                      "ended_at": "2024-01-15T10:35:31.502000Z", "tags": tags}))
                .set_delay(delay),
            None => ResponseTemplate::new(404).set_body_json(json!({"detail": "Not Found"})).set_delay(delay),
        }
    }
}
