//! The HTTP receiver: Beyond Presence posts here. It parses, routes, renders and stores; answers 200
//! only once the event's posts are committed to the store, and does no network I/O of its own;
//! delivery happens after the answer.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App, HttpResponse, HttpServer, ResponseError};
use anyhow::Context as _;
use serde_json::json;

use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::event::{self, Incoming};
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};
use crate::{pipeline, sinks, telemetry};

/// How long shutdown waits for requests and posts in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A bound, ready-to-run relay.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    dispatcher: Arc<Dispatcher>,
}

struct State {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    dispatcher: Arc<Dispatcher>,
}

impl Application {
    /// Opens the store, binds `server.listen` (port 0 picks a free port) and starts the lanes,
    /// which resume whatever was queued before.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.store.path, config.store.max_bytes)?);
        Self::build_with_store(config, store).await
    }

    /// As [`Application::build`], with a given store.
    pub async fn build_with_store(config: Config, store: Arc<dyn Store>) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&config.server.listen)
            .with_context(|| format!("cannot listen on `{}` (key `server.listen`)", config.server.listen))?;
        let port = listener.local_addr()?.port();
        for (name, why) in config.disabled_channels() {
            telemetry::channel_disabled(name, why);
        }
        let client = sinks::http_client(config.delivery.request_timeout);
        let sinks = config
            .channels
            .values()
            .filter_map(|c| sinks::for_channel(c, &client).map(|s| (c.name.clone(), s)))
            .collect();
        let dispatcher = Arc::new(Dispatcher::start(&config, store.clone(), sinks).await);
        let path = config.server.path.clone();
        let state = web::Data::new(State { config: Arc::new(config), store, dispatcher: dispatcher.clone() });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .service(
                    web::resource(path.as_str())
                        .wrap(DefaultHeaders::new().add((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")))
                        .route(web::post().to(receive))
                        .route(web::method(actix_web::http::Method::OPTIONS).to(preflight)),
                )
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .default_service(web::to(not_found))
        })
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
        .listen(listener)?
        .run();
        Ok(Application { port, server, dispatcher })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The delivery lanes (tests use it to wait until everything queued was posted).
    pub fn dispatcher(&self) -> Arc<Dispatcher> {
        self.dispatcher.clone()
    }

    /// Serves until SIGINT/SIGTERM; then stops accepting, finishes requests in flight, lets posts
    /// in flight finish within [`SHUTDOWN_GRACE`], and leaves the rest queued for the next start.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await?;
        self.dispatcher.stop(SHUTDOWN_GRACE).await;
        let queued: u64 = match self.dispatcher.store().depths().await {
            Ok(d) => d.iter().map(|d| d.pending).sum(),
            Err(_) => 0,
        };
        tracing::info!(queued, "Stopped; queued posts will be sent after the next start.");
        Ok(())
    }
}

/// Errors answered to the sender: a status and `{"error": "…"}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body cannot be relayed.
    #[error("{0}")]
    BadRequest(String),
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
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Unavailable(e) => telemetry::store_failed("accept an event", &e.to_string()),
            _ => telemetry::event_rejected(self.status_code().as_u16(), &self.to_string()),
        }
        HttpResponse::build(self.status_code()).json(json!({ "error": self.to_string() }))
    }
}

async fn receive(state: web::Data<State>, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let max = state.config.server.max_body_bytes;
    let body = payload
        .to_bytes_limited(max)
        .await
        .map_err(|_| ApiError::TooLarge(max))?
        .map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
    let event = match event::parse(&body, chrono::Utc::now()).map_err(|e| ApiError::BadRequest(e.to_string()))? {
        Incoming::Event(e) => e,
        Incoming::Unknown(kind) => {
            telemetry::event_unknown(&kind);
            return Ok(HttpResponse::Ok().json(json!({"status": "ignored", "reason": "unknown event_type"})));
        }
    };
    let plan = pipeline::plan(&state.config, &event);
    let count = plan.deliveries.len();
    let channels: Vec<String> = plan.channels().into_iter().map(str::to_owned).collect();
    if count > 0 || !plan.dead.is_empty() {
        state.store.accept(plan.deliveries, plan.dead).await.map_err(ApiError::Unavailable)?;
    }
    for c in &channels {
        state.dispatcher.wake(c);
    }
    telemetry::event_accepted(event.event_type, &event.call_id, count);
    Ok(HttpResponse::Ok().json(json!({"status": "accepted", "deliveries": count})))
}

/// The browser-side URL check sends a CORS preflight before its test POST.
async fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready when the store takes writes and no channel is broken; says which are, as JSON.
async fn readyz(state: web::Data<State>) -> HttpResponse {
    let store = state.store.ping().await;
    let broken = state.dispatcher.broken();
    let disabled: serde_json::Map<String, serde_json::Value> =
        state.config.disabled_channels().map(|(n, why)| (n.to_owned(), json!(why))).collect();
    let ready = store.is_ok() && broken.is_empty();
    let body = json!({
        "ready": ready,
        "store": match &store { Ok(()) => "ok".to_owned(), Err(e) => e.to_string() },
        "broken_channels": broken,
        "disabled_channels": disabled,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({"error": "not found"}))
}
