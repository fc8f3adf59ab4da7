//! The HTTP receiver: Beyond Presence posts here. It parses, routes, renders and queues, answers 200
//! in milliseconds, and does no network I/O of its own; delivery happens after the answer.

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
use crate::{pipeline, sinks, telemetry};

/// How long shutdown waits for queued posts to go out.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A bound, ready-to-run relay.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    dispatcher: Dispatcher,
}

struct State {
    config: Arc<Config>,
    dispatcher: Dispatcher,
}

impl Application {
    /// Binds `server.listen` (port 0 picks a free port) and starts the delivery lanes.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&config.server.listen).with_context(|| {
            format!(
                "cannot listen on `{}` (key `server.listen`)",
                config.server.listen
            )
        })?;
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
        let dispatcher = Dispatcher::start(sinks);
        let path = config.server.path.clone();
        let state = web::Data::new(State {
            config: Arc::new(config),
            dispatcher: dispatcher.clone(),
        });
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
                .default_service(web::to(not_found))
        })
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
        .listen(listener)?
        .run();
        Ok(Application {
            port,
            server,
            dispatcher,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle on the delivery lanes (tests use it to wait until everything queued was posted).
    pub fn dispatcher(&self) -> Dispatcher {
        self.dispatcher.clone()
    }

    /// Serves until SIGINT/SIGTERM, then stops accepting, finishes requests in flight and gives queued
    /// posts up to [`SHUTDOWN_GRACE`] to go out.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await?;
        let left = self.dispatcher.drain(SHUTDOWN_GRACE).await;
        if left > 0 {
            tracing::warn!(left, "Stopped with posts still queued; they were not sent.");
        } else {
            tracing::info!("Stopped; every queued post was sent.");
        }
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
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        telemetry::event_rejected(self.status_code().as_u16(), &self.to_string());
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
    let event = match event::parse(&body, chrono::Utc::now())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?
    {
        Incoming::Event(e) => e,
        Incoming::Unknown(kind) => {
            telemetry::event_unknown(&kind);
            return Ok(HttpResponse::Ok()
                .json(json!({"status": "ignored", "reason": "unknown event_type"})));
        }
    };
    let deliveries = pipeline::deliveries(&state.config, &event);
    let count = deliveries.len();
    for lost in state.dispatcher.enqueue(deliveries) {
        tracing::error!(channel = %lost.channel, call_id = %lost.call_id, "No delivery lane for the channel.");
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

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({"error": "not found"}))
}
