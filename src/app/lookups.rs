//! Beyond Presence API lookups (`[beyond_presence]`): events of a call whose agent no event named
//! wait in the relay's own queue ([`LOOKUP_QUEUE`], in the store, so a restart loses none) while
//! the call is looked up (`GET {api_url}/calls/{call_id}`, header `x-api-key`); then they are
//! routed with the answer as `call.*` (and its `agent_id` as the event's), or without it once
//! `lookup_timeout` has passed since they were accepted. One relay at a time works the queue (it
//! holds the queue's lease, like a channel's). Lookups are paced, retried with backoff while time
//! is left, and cached per call; a failing or slow API delays those events by at most the
//! timeout and never loses one. The key is sent only in its header and never logged.

use std::sync::Weak;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::State;
use crate::config::BeyondPresenceConfig;
use crate::event::EventType;
use crate::intake::{self, LOOKUP_QUEUE};
use crate::store::{now_ms, CallNote, Content, Fence, NewEvent};
use crate::telemetry;

/// Held events routed per commit.
const BATCH: usize = 64;
/// How often an idle worker looks at its queue anyway.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Least time between two requests to the API (at most 20 a second).
const PACE: Duration = Duration::from_millis(50);
/// First wait before trying a failed lookup again; doubled per attempt, up to a second.
const RETRY_BASE: Duration = Duration::from_millis(100);
/// Longest wait for one answer (less when less time is left).
const MAX_WAIT: Duration = Duration::from_secs(10);

/// Works the lookup queue while the application lives.
pub fn spawn(state: Weak<State>) {
    tokio::spawn(async move {
        let client = crate::platforms::http_client(MAX_WAIT);
        let mut worker = Worker { client, cache: Default::default(), last_request: None, fence: None };
        loop {
            let Some(state) = state.upgrade() else { return };
            let wake = state.lookups.clone();
            let worked = worker.turn(&state).await;
            drop(state);
            if !worked {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
        }
    });
}

struct Worker {
    /// One client for every lookup (its connections are reused); each request has its own
    /// timeout, the time left.
    client: reqwest::Client,
    /// Answers by call (an empty map: none in time). Not the receiver's memory of the call:
    /// that learns the answer only once the held events are routed, so none overtakes them.
    cache: std::collections::HashMap<String, Map<String, Value>>,
    last_request: Option<Instant>,
    fence: Option<Fence>,
}

impl Worker {
    /// Routes the held events waiting now; whether there were any. The queue is read first and
    /// its lease taken only when it holds something, so an idle relay writes nothing for it.
    async fn turn(&mut self, state: &State) -> bool {
        let config = state.snapshot.load().config.clone();
        let batch = match state.store.pending(LOOKUP_QUEUE, BATCH).await {
            Ok(b) if !b.is_empty() => b,
            Ok(_) => return false,
            Err(e) => {
                telemetry::store_failed("read the lookup queue", &e.to_string());
                return false;
            }
        };
        let ttl = config.store.lease.as_millis() as i64;
        let held = self.fence.as_ref().map(|f| f.token);
        self.fence = match state.store.lease(LOOKUP_QUEUE, state.dispatcher.owner(), ttl, held).await {
            Ok(Some(lease)) => Some(Fence { channel: LOOKUP_QUEUE.into(), token: lease.token }),
            Ok(None) => return false,
            Err(e) => {
                telemetry::store_failed("take the lookup queue's lease", &e.to_string());
                return false;
            }
        };
        let api = &config.beyond_presence;
        let mut routed = Vec::with_capacity(batch.len());
        for q in &batch {
            let Content::Event(json) = &q.content else { continue };
            let (Ok(mut context), Some(event_type)) =
                (serde_json::from_str::<Value>(json), EventType::from_name(&q.event_type))
            else {
                continue;
            };
            let deadline = q.accepted_at_ms + api.lookup_timeout.as_millis() as i64;
            let answer = match self.cache.get(&q.call_id) {
                Some(answer) => answer.clone(),
                None => {
                    let answer = self.look_up(api, &q.call_id, deadline).await;
                    self.cache.insert(q.call_id.clone(), answer.clone());
                    answer
                }
            };
            let agent = answer.get("agent_id").and_then(Value::as_str).map(str::to_owned);
            if let Some(call) = context.get_mut("call").and_then(Value::as_object_mut) {
                call.extend(answer.clone());
            }
            if context.get("agent_id").is_none_or(Value::is_null) {
                context["agent_id"] = agent.clone().map_or(Value::Null, Value::from);
            }
            let note = agent.map(|agent_id| CallNote { agent_id: Some(agent_id), ..CallNote::default() });
            routed.push((q.call_id.clone(), intake::route_held(&config, event_type, &context, note)));
        }
        let ids = batch.iter().map(|q| q.id).collect();
        let (calls, events): (Vec<String>, Vec<NewEvent>) = routed.into_iter().unzip();
        let channels: Vec<String> = events.iter().flat_map(|e| e.channels.clone()).collect();
        let fence = self.fence.clone().expect("held");
        match state.store.reroute(&fence, ids, events).await {
            Ok(()) => {
                for call in calls {
                    state.calls.looked_up(&call, self.cache.get(&call).unwrap_or(&Map::new()));
                }
                for channel in channels {
                    state.dispatcher.wake(&channel);
                }
            }
            Err(e) => {
                telemetry::store_failed("route events held for a lookup", &e.to_string());
                self.fence = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if self.cache.len() > 10_000 {
            self.cache.clear();
        }
        true
    }

    /// The API's call object for `call_id`, or an empty map when there is none by `deadline_ms`
    /// (no key configured, an unknown call, a refused key, or no answer in time).
    async fn look_up(&mut self, api: &BeyondPresenceConfig, call_id: &str, deadline_ms: i64) -> Map<String, Value> {
        let Some(key) = &api.api_key else { return Map::new() };
        let url = format!("{}/calls/{}", api.api_url.trim_end_matches('/'), urlencoded(call_id));
        let mut wait = RETRY_BASE;
        loop {
            let left = Duration::from_millis((deadline_ms - now_ms()).max(0) as u64);
            if left.is_zero() {
                telemetry::lookup_failed(call_id, "no answer within beyond_presence.lookup_timeout");
                return Map::new();
            }
            if let Some(last) = self.last_request {
                tokio::time::sleep_until(last + PACE).await;
            }
            self.last_request = Some(Instant::now());
            let request = self.client.get(&url).header("x-api-key", key.expose()).timeout(left.min(MAX_WAIT));
            let answer = request.send().await;
            let retry_after = match answer {
                Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                    Ok(Value::Object(call)) => {
                        telemetry::looked_up(call_id);
                        return call;
                    }
                    _ => {
                        telemetry::lookup_failed(call_id, "the answer is not a JSON object");
                        return Map::new();
                    }
                },
                Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                    r.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                }
                Ok(r) => {
                    // 404 (no such call), 401/403 (the key), 422: asking again would not help.
                    telemetry::lookup_failed(call_id, &format!("the API answered {}", r.status()));
                    return Map::new();
                }
                Err(e) => {
                    tracing::debug!(call_id, error = %e.without_url(), "A call lookup failed; trying again.");
                    None
                }
            };
            let pause = retry_after.map_or(wait, Duration::from_secs);
            tokio::time::sleep(pause.min(left)).await;
            wait = (wait * 2).min(Duration::from_secs(1));
        }
    }
}

fn urlencoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
