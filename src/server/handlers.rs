//! Request handlers: the webhook, its CORS preflight, health and readiness.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use std::sync::atomic::Ordering;

use serde_json::json;
use tracing::Instrument as _;

use super::ALLOWED_HEADERS;
use crate::app::State;
use crate::auth::{Denied, SignatureHeaders};
use crate::event::{self, Incoming};
use crate::store::{now_ms, Accepted, OnceKey, StoreError};
use crate::{intake, telemetry};

/// Errors answered to the sender: a status and `{"error": "…"}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body cannot be relayed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: an authentication check failed (which one is logged, not told).
    #[error("unauthorized")]
    Unauthorized(Denied),
    /// 408: the body did not arrive within `server.read_timeout`.
    #[error("the body did not arrive within server.read_timeout")]
    Timeout,
    /// 413: the body is over `server.max_body_bytes`.
    #[error("the body is larger than {0} bytes (server.max_body_bytes)")]
    TooLarge(usize),
    /// 503: the event could not be stored, so it is not acknowledged.
    #[error("the relay cannot store events right now; nothing was accepted")]
    Unavailable(#[source] StoreError),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Unavailable(e) => telemetry::store_failed("accept an event", &e.to_string()),
            ApiError::Unauthorized(why) => telemetry::auth_failed(why.as_str()),
            _ => telemetry::event_rejected(self.status_code().as_u16(), &self.to_string()),
        }
        HttpResponse::build(self.status_code()).json(json!({ "error": self.to_string() }))
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

pub(super) async fn receive(
    state: web::Data<State>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let snapshot = state.snapshot.load_full();
    let (config, auth) = (&snapshot.config, &snapshot.auth);
    let peer = req.peer_addr().map(|a| a.ip());
    auth.check_network(peer, header(&req, "x-forwarded-for")).map_err(ApiError::Unauthorized)?;
    auth.check_token(header(&req, "authorization"), req.query_string()).map_err(ApiError::Unauthorized)?;

    let server = &config.server;
    let body = tokio::time::timeout(server.read_timeout, payload.to_bytes_limited(server.max_body_bytes))
        .await
        .map_err(|_| ApiError::Timeout)?
        .map_err(|_| ApiError::TooLarge(server.max_body_bytes))?
        .map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;

    let signed = SignatureHeaders {
        id: header(&req, "webhook-id"),
        timestamp: header(&req, "webhook-timestamp"),
        signature: header(&req, "webhook-signature"),
    };
    let webhook_id = auth.check_signature(signed, &body, now_ms() / 1000).map_err(ApiError::Unauthorized)?;
    let mut once = Vec::new();
    if let Some(id) = &webhook_id {
        once.push(OnceKey {
            key: format!("webhook-id:{id}"),
            expires_at_ms: now_ms() + auth.replay_window().as_millis() as i64,
        });
    }

    let mut event = match event::parse(&body, chrono::Utc::now()).map_err(|e| ApiError::BadRequest(e.to_string()))? {
        Incoming::Event(e) => e,
        Incoming::Unknown(kind) => {
            if !once.is_empty() && state.store.accept(None, once).await.map_err(ApiError::Unavailable)? != Accepted::New
            {
                return Err(ApiError::Unauthorized(Denied::Replay));
            }
            telemetry::event_unknown(&kind);
            return Ok(HttpResponse::Ok().json(json!({"status": "ignored", "reason": "unknown event_type"})));
        }
    };
    // At debug level: at info, formatting the span's fields cost every request an allocation, and
    // every log line about an event names its call already.
    let span = tracing::debug_span!("event", call_id = %event.call_id, event_type = event.event_type.as_str());
    accept(&state, config, &mut event, &body, once).instrument(span).await
}

/// Routes and commits a parsed event (within its `event` span); its channels' lanes render it.
async fn accept(
    state: &State,
    config: &crate::setup::Config,
    event: &mut event::Event,
    body: &[u8],
    mut once: Vec<OnceKey>,
) -> Result<HttpResponse, ApiError> {
    let window = config.dedup.window;
    if let Some(key) = (!window.is_zero()).then(|| event::dedup_key(event, body)).flatten() {
        once.push(OnceKey { key, expires_at_ms: now_ms() + window.as_millis() as i64 });
    }
    // What the call told earlier (its agent, above all) is routed on as if this event said it.
    let known =
        state.calls.recall(&*state.store, event, config.calls.end_after).await.map_err(ApiError::Unavailable)?;
    // With a Beyond Presence API key, a call no event named the agent of is looked up first.
    let hold = config.beyond_presence.api_key.is_some() && state.calls.needs_lookup(event);
    let planned = intake::route(config, event, known, hold);
    let channels = planned.channels.clone();
    let started: Vec<String> = planned.started.as_ref().map(|s| s.channels.clone()).unwrap_or_default();
    let kept = config.admin.enabled.then(|| planned.event.clone());
    if !channels.is_empty() || !once.is_empty() || planned.call.is_some() {
        let committed = state.store.accept(Some(planned), once).await.map_err(|e| {
            // The event is written twice (its row and its recent row), with some room.
            state.refused_bytes.fetch_max(body.len() * 3, Ordering::Relaxed);
            ApiError::Unavailable(e)
        })?;
        match committed {
            Accepted::New => {}
            Accepted::Seen(key) if key.starts_with("webhook-id:") => {
                return Err(ApiError::Unauthorized(Denied::Replay))
            }
            Accepted::Seen(_) => {
                telemetry::duplicate_dropped(event.event_type, &event.call_id);
                return Ok(HttpResponse::Ok().json(json!({"status": "duplicate", "deliveries": 0})));
            }
        }
    }
    state.calls.learned(event, hold);
    if hold {
        state.lookups.notify_one();
    }
    for c in started.iter().chain(&channels) {
        state.dispatcher.wake(c);
    }
    if let Some(json) = kept {
        state.last_events.push(event.event_type.as_str().to_owned(), event.call_id.clone(), json);
    }
    // Held for the call's lookup: routed (and counted) once it answers.
    let deliveries = if hold { 0 } else { channels.len() };
    telemetry::event_accepted(event.event_type, &event.call_id, deliveries);
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(format!(r#"{{"status":"accepted","deliveries":{deliveries}}}"#)))
}

/// The browser-side URL check sends a CORS preflight before its test POST; it carries no
/// credentials, so it is answered without authentication.
pub(super) async fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `/readyz` query.
#[derive(Debug, serde::Deserialize)]
pub(super) struct ReadyQuery {
    /// `intake`: ignore broken channels.
    scope: Option<String>,
}

/// The smallest write `/readyz` tries.
const READINESS_PROBE_BYTES: usize = 8192;

/// Ready when the store takes writes and no channel is broken; says which are, as JSON. With
/// `?scope=intake`, only whether events can be accepted (for load balancers: a broken channel
/// must not take the relay out of rotation for the other channels' events).
pub(super) async fn readyz(state: web::Data<State>, query: web::Query<ReadyQuery>) -> HttpResponse {
    let refused = state.refused_bytes.load(Ordering::Relaxed);
    let store = state.store.ping(refused.max(READINESS_PROBE_BYTES)).await;
    if store.is_ok() && refused > 0 {
        state.refused_bytes.store(0, Ordering::Relaxed);
    }
    let broken = state.dispatcher.broken();
    let snapshot = state.snapshot.load();
    let disabled: serde_json::Map<String, serde_json::Value> =
        snapshot.config.disabled_channels().map(|(n, why)| (n.to_owned(), json!(why))).collect();
    let intake_only = query.scope.as_deref() == Some("intake");
    let ready = store.is_ok() && (intake_only || broken.is_empty());
    let loaded_at = chrono::DateTime::from_timestamp_millis(state.reloads.loaded_at_ms.load(Ordering::Relaxed));
    let body = json!({
        "ready": ready,
        "store": match &store { Ok(()) => "ok".to_owned(), Err(e) => e.to_string() },
        "config": {
            "source": snapshot.config.source.display_name(),
            "loaded_at": loaded_at.map(|t| t.to_rfc3339()),
            "reloads": state.reloads.succeeded.load(Ordering::Relaxed),
            "failed_reloads": state.reloads.failed.load(Ordering::Relaxed),
        },
        "broken_channels": broken,
        "disabled_channels": disabled,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text format. Queue depth and age are read from the store at scrape time.
pub(super) async fn metrics(state: web::Data<State>) -> HttpResponse {
    let snapshot = state.snapshot.load();
    let depths = state.store.depths().await.unwrap_or_default();
    let now = now_ms();
    for channel in snapshot.config.channels.keys() {
        let d = depths.iter().find(|d| &d.channel == channel);
        let oldest = d.and_then(|d| d.oldest_ms).map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
        telemetry::queue_observed(channel, d.map_or(0, |d| d.pending), oldest);
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}

pub(super) async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({"error": "not found"}))
}
