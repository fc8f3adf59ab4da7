//! The HTTP receiver: Beyond Presence posts here. It authenticates, parses, routes, renders and
//! stores; it answers 200 only once the event's posts are committed, and does no network I/O of its
//! own: delivery happens after the answer.

pub mod auth;
mod handlers;
mod reload;
pub mod tls;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;
use arc_swap::ArcSwap;

use crate::dispatch::Dispatcher;
use crate::setup::Config;
use crate::store::Store;
use crate::telemetry;
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
    state: web::Data<State>,
}

/// The configuration in force and what is compiled from it; swapped whole on reload, so every
/// request reads one consistent snapshot.
pub(crate) struct Snapshot {
    pub config: Arc<Config>,
    pub auth: Authenticator,
}

/// What every request handler reads.
pub(crate) struct State {
    pub snapshot: ArcSwap<Snapshot>,
    pub store: Arc<dyn Store>,
    pub dispatcher: Arc<Dispatcher>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub reloads: reload::Status,
    /// Size of the last body the store refused (0 once it takes writes again): `/readyz` probes
    /// with at least this much, so readiness tracks what accepting actually needs.
    pub refused_bytes: std::sync::atomic::AtomicUsize,
    /// The last events this relay accepted, for the console's playground.
    pub last_events: LastEvents,
}

/// The last [`LastEvents::KEPT`] events this relay accepted (normalised JSON), in memory: the
/// console's playground offers them as input. Not in the store, so a full store cannot be kept
/// full by them; each replica offers the events it took itself.
#[derive(Default)]
pub struct LastEvents(std::sync::Mutex<(u64, std::collections::VecDeque<LastEvent>)>);

/// One accepted event, as the playground offers it.
#[derive(Debug, Clone)]
pub struct LastEvent {
    /// Its number among the events this relay accepted since it started.
    pub seq: u64,
    /// Its type.
    pub event_type: String,
    /// Its call.
    pub call_id: String,
    /// The normalised event as JSON.
    pub event: String,
}

impl LastEvents {
    /// How many are kept.
    pub const KEPT: usize = 20;

    /// Keeps an accepted event, forgetting the oldest beyond [`LastEvents::KEPT`].
    pub fn push(&self, event_type: String, call_id: String, event: String) {
        let mut kept = self.0.lock().expect("not poisoned");
        kept.0 += 1;
        let seq = kept.0;
        kept.1.push_front(LastEvent { seq, event_type, call_id, event });
        kept.1.truncate(Self::KEPT);
    }

    /// Newest first.
    pub fn list(&self) -> Vec<LastEvent> {
        self.0.lock().expect("not poisoned").1.iter().cloned().collect()
    }
}

/// Lists every metric family at zero for this configuration's channels (see
/// [`telemetry::families_ready`]).
fn metric_families_ready(config: &Config) {
    telemetry::families_ready(config.channels.keys().map(String::as_str), &auth::Denied::ALL.map(auth::Denied::as_str));
}

impl Application {
    /// Opens the store, binds `server.listen` (port 0 picks a free port), loads the TLS
    /// certificate if configured, starts the lanes (which resume whatever was queued before) and
    /// the live reloader.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let store = crate::store::open(&config.store, true).await?;
        Self::build_with_store(config, store).await
    }

    /// As [`Application::build`], with a given store.
    pub async fn build_with_store(config: Config, store: Arc<dyn Store>) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&config.server.listen)
            .with_context(|| format!("cannot listen on `{}` (key `server.listen`)", config.server.listen))?;
        let port = listener.local_addr()?.port();
        let certs = config.server.tls.as_ref().map(CertStore::load).transpose()?;
        let metrics = telemetry::metrics_handle();
        metric_families_ready(&config);
        for (name, why) in config.disabled_channels() {
            telemetry::channel_disabled(name, why);
        }
        let config = Arc::new(config);
        let dispatcher = Arc::new(Dispatcher::start(&config, store.clone()).await);
        let path = config.server.path.clone();
        let (read_timeout, max_connections) = (config.server.read_timeout, config.server.max_connections);
        let source = config.source.clone();
        let templates_dir = config.templates_dir.clone();
        let state = web::Data::new(State {
            snapshot: ArcSwap::from_pointee(Snapshot { auth: Authenticator::new(&config.auth), config }),
            store,
            dispatcher,
            metrics,
            reloads: reload::Status::default(),
            refused_bytes: Default::default(),
            last_events: Default::default(),
        });
        let app_state = state.clone();
        let http = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .service(
                    web::resource(path.as_str())
                        .wrap(DefaultHeaders::new().add((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")))
                        .route(web::post().to(handlers::receive))
                        .route(web::method(actix_web::http::Method::OPTIONS).to(handlers::preflight)),
                )
                .route("/healthz", web::get().to(handlers::healthz))
                .route("/readyz", web::get().to(handlers::readyz))
                .route("/metrics", web::get().to(handlers::metrics))
                .default_service(web::to(handlers::not_found))
        })
        .client_request_timeout(read_timeout)
        .max_connections(max_connections)
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs());
        let server = match &certs {
            Some(certs) => http.listen_rustls_0_23(listener, certs.server_config()?)?.run(),
            None => http.listen(listener)?.run(),
        };
        reload::spawn(source, templates_dir, state.clone(), certs);
        Ok(Application { port, server, state })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What every handler reads (the console serves from the same).
    pub(crate) fn state(&self) -> web::Data<State> {
        self.state.clone()
    }

    /// The delivery lanes (tests use it to wait until everything queued was posted).
    pub fn dispatcher(&self) -> Arc<Dispatcher> {
        self.state.dispatcher.clone()
    }

    /// Serves until SIGINT/SIGTERM; then stops accepting, finishes requests in flight, lets posts
    /// in flight finish within [`SHUTDOWN_GRACE`], and leaves the rest queued for the next start.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await?;
        let dispatcher = &self.state.dispatcher;
        dispatcher.stop(SHUTDOWN_GRACE).await;
        let queued: u64 = match dispatcher.store().depths().await {
            Ok(d) => d.iter().map(|d| d.pending).sum(),
            Err(_) => 0,
        };
        if queued == 0 {
            tracing::info!("Stopped; nothing is left queued.");
        } else {
            tracing::info!(queued, "Stopped; queued posts will be sent after the next start.");
        }
        Ok(())
    }
}
