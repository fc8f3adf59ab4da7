//! The HTTP receiver: Beyond Presence posts here. It authenticates, parses, routes, renders and
//! stores; it answers 200 only once the event's posts are committed, and does no network I/O of its
//! own: delivery happens after the answer.

pub mod auth;
mod handlers;
pub mod tls;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;

use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use crate::{sinks, telemetry};
use auth::Authenticator;
use tls::CertStore;

pub use handlers::ApiError;

/// How long shutdown waits for requests and posts in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Headers a browser may send to the webhook path (the CORS preflight's allow list).
pub const ALLOWED_HEADERS: &str = "Content-Type, Authorization, webhook-id, webhook-timestamp, webhook-signature";

/// A bound, ready-to-run relay.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    dispatcher: Arc<Dispatcher>,
}

/// What every request handler reads.
pub(crate) struct State {
    pub config: Arc<Config>,
    pub auth: Authenticator,
    pub store: Arc<dyn Store>,
    pub dispatcher: Arc<Dispatcher>,
}

impl Application {
    /// Opens the store, binds `server.listen` (port 0 picks a free port), loads the TLS
    /// certificate if configured, and starts the lanes, which resume whatever was queued before.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.store.path, config.store.max_bytes)?);
        Self::build_with_store(config, store).await
    }

    /// As [`Application::build`], with a given store.
    pub async fn build_with_store(config: Config, store: Arc<dyn Store>) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&config.server.listen)
            .with_context(|| format!("cannot listen on `{}` (key `server.listen`)", config.server.listen))?;
        let port = listener.local_addr()?.port();
        let certs = config.server.tls.as_ref().map(CertStore::load).transpose()?;
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
        let (read_timeout, max_connections) = (config.server.read_timeout, config.server.max_connections);
        let state = web::Data::new(State {
            auth: Authenticator::new(&config.auth),
            config: Arc::new(config),
            store,
            dispatcher: dispatcher.clone(),
        });
        let http = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .service(
                    web::resource(path.as_str())
                        .wrap(DefaultHeaders::new().add((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")))
                        .route(web::post().to(handlers::receive))
                        .route(web::method(actix_web::http::Method::OPTIONS).to(handlers::preflight)),
                )
                .route("/healthz", web::get().to(handlers::healthz))
                .route("/readyz", web::get().to(handlers::readyz))
                .default_service(web::to(handlers::not_found))
        })
        .client_request_timeout(read_timeout)
        .max_connections(max_connections)
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs());
        let server = match certs {
            Some(certs) => {
                let tls = certs.server_config()?;
                spawn_sighup(certs);
                http.listen_rustls_0_23(listener, tls)?.run()
            }
            None => http.listen(listener)?.run(),
        };
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

/// Re-reads the TLS certificate on every SIGHUP.
fn spawn_sighup(certs: Arc<CertStore>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
        while hup.recv().await.is_some() {
            match certs.reload() {
                Ok(()) => tracing::info!("Reloaded the TLS certificate."),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "Could not reload the TLS certificate; still serving the previous one.")
                }
            }
        }
    });
}
