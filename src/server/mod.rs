//! The webhook receiver: Beyond Presence posts here. It authenticates, parses, routes and stores;
//! it answers 200 only once the event's posts are committed, and does no network I/O of its own:
//! delivery happens after the answer. It serves the running application ([`crate::app`]), as
//! the console does.

pub mod activation;
mod handlers;
pub mod handover;
pub mod tls;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;

use crate::app::State;
use crate::dispatch::Dispatcher;
use crate::setup::Config;
use crate::store::Store;
use tls::CertStore;
use tokio::sync::Notify;

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
    /// A copy of the listening socket, for a successor (see [`handover`]).
    socket: TcpListener,
    /// Woken once a successor serves: this relay then stops as on SIGTERM.
    handed_over: Arc<Notify>,
}

/// On SIGTERM or SIGINT, or once a successor serves: stop accepting first, so every connection
/// already taken is served (a socket handed over by systemd, or to a successor, keeps queueing
/// new ones for the next process), then stop gracefully: requests in flight finish within
/// [`SHUTDOWN_GRACE`].
fn stop_on_signal(handle: actix_web::dev::ServerHandle, handed_over: Arc<Notify>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = handed_over.notified() => {}
        }
        handle.pause().await;
        // Connections accepted just before the pause reach their worker before it is stopped.
        tokio::time::sleep(Duration::from_millis(100)).await;
        handle.stop(true).await;
    });
}

impl Application {
    /// Opens the store, binds `server.listen` (port 0 picks a free port), loads the TLS
    /// certificate if configured, starts the lanes (which resume whatever was queued before) and
    /// the live reloader.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        Self::build_on(config, None).await
    }

    /// As [`Application::build`], serving on `listener` (a socket handed over by systemd, see
    /// [`activation`]) instead of binding `server.listen`, when one is given.
    pub async fn build_on(config: Config, listener: Option<TcpListener>) -> anyhow::Result<Application> {
        let store = crate::store::open(&config.store, true).await?;
        Self::build_with_store_on(config, store, listener).await
    }

    /// As [`Application::build`], with a given store.
    pub async fn build_with_store(config: Config, store: Arc<dyn Store>) -> anyhow::Result<Application> {
        Self::build_with_store_on(config, store, None).await
    }

    async fn build_with_store_on(
        config: Config,
        store: Arc<dyn Store>,
        listener: Option<TcpListener>,
    ) -> anyhow::Result<Application> {
        let listener = match listener {
            Some(handed_over) => {
                tracing::info!(
                    "Serving on the socket handed over by the service manager (`server.listen` is not used)."
                );
                handed_over
            }
            None => TcpListener::bind(&config.server.listen)
                .with_context(|| format!("cannot listen on `{}` (key `server.listen`)", config.server.listen))?,
        };
        let port = listener.local_addr()?.port();
        let socket = listener.try_clone().context("cannot copy the listening socket")?;
        let certs = config.server.tls.as_ref().map(CertStore::load).transpose()?;
        let path = config.server.path.clone();
        let (read_timeout, max_connections) = (config.server.read_timeout, config.server.max_connections);
        let source = config.source.clone();
        let templates_dir = config.templates_dir.clone();
        let state = State::start(config, store).await;
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
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
        .disable_signals();
        let server = match &certs {
            Some(certs) => http.listen_rustls_0_23(listener, certs.server_config()?)?.run(),
            None => http.listen(listener)?.run(),
        };
        let handed_over = Arc::new(Notify::new());
        stop_on_signal(server.handle(), handed_over.clone());
        // SIGHUP also re-reads the TLS certificate.
        let reload_certs = certs.map(|certs| {
            Box::new(move || match certs.reload() {
                Ok(()) => tracing::info!("Reloaded the TLS certificate."),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "Could not reload the TLS certificate; still serving the previous one.")
                }
            }) as Box<dyn Fn() + Send + Sync>
        });
        crate::app::watch_for_reloads(source, templates_dir, state.clone(), reload_certs);
        Ok(Application { port, server, state, socket, handed_over })
    }

    /// Restarts in place on `SIGUSR2` (see [`handover`]), handing the successor this relay's
    /// socket and the console's (`console`, when it serves).
    pub fn restart_in_place_on_signal(&self, console: Option<TcpListener>) -> anyhow::Result<()> {
        let webhook = self.socket.try_clone().context("cannot copy the listening socket")?;
        handover::restart_on_signal(handover::Sockets { webhook, console }, self.handed_over.clone());
        Ok(())
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The running application it serves (the console serves the same).
    pub fn state(&self) -> web::Data<State> {
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
