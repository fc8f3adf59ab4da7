//! The web console, on its own listener (`[admin]`, default `127.0.0.1:9090`, never the webhook
//! port): the channels' delivery state, dead letters (replay, purge) and a template playground
//! that renders through the same path as real posts, with Slack and Discord look-alike previews.
//! Server-rendered HTML (maud escapes every value it is given), one small script of our own, a
//! strict Content-Security-Policy, a login form off loopback and a CSRF token on every form.

mod auth;
mod call;
mod frame;
mod pages;
mod playground;

mod routes;

use std::net::TcpListener;

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App, HttpResponse, HttpServer};

use crate::app::State;
pub use auth::Sessions;

/// Every console response's security headers: nothing runs or loads but the console's own
/// script and stylesheet, forms post only to the console, no page may frame it.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = include_str!("console.css");
const SCRIPT: &str = include_str!("console.js");

/// Binds `[admin] listen` and starts serving the console for the running application (the
/// same configuration, store and lanes as the receiver's); the port bound. An address that cannot
/// be bound is logged and the relay goes on without a console (taking events matters more).
pub fn start(state: web::Data<State>) -> Option<u16> {
    start_on(state, None).map(|(port, _)| port)
}

/// As [`start`], serving on `listener` (a socket handed over by systemd or by the relay this one
/// succeeds, named `console`) instead of binding `admin.listen`, when one is given. Gives the
/// port and a copy of the listening socket (for an in-place restart).
pub fn start_on(state: web::Data<State>, listener: Option<TcpListener>) -> Option<(u16, TcpListener)> {
    let admin = state.snapshot.load().config.admin.clone();
    if !admin.enabled {
        return None;
    }
    let bound = match listener {
        Some(handed_over) => Ok(handed_over),
        None => TcpListener::bind(&admin.listen),
    };
    let listener = match bound {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %admin.listen, error = %e, "Cannot serve the console (key `admin.listen`); the relay runs without it.");
            return None;
        }
    };
    let port = listener.local_addr().ok()?.port();
    let copy = listener.try_clone().ok()?;
    let sessions = web::Data::new(Sessions::new());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(sessions.clone())
            .app_data(web::FormConfig::default().limit(1 << 20))
            .wrap(
                DefaultHeaders::new()
                    .add((header::CONTENT_SECURITY_POLICY, CSP))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::X_FRAME_OPTIONS, "DENY"))
                    .add((header::REFERRER_POLICY, "no-referrer"))
                    .add((header::CACHE_CONTROL, "no-store")),
            )
            .route("/static/console.css", web::get().to(|| async { asset("text/css; charset=utf-8", stylesheet()) }))
            .route("/static/console.js", web::get().to(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
            .route("/login", web::get().to(auth::login_form))
            .route("/login", web::post().to(auth::login))
            .route("/logout", web::post().to(auth::logout))
            .route("/", web::get().to(pages::overview))
            .route("/fragments/overview", web::get().to(pages::overview_fragment))
            .route("/calls/{call_id}", web::get().to(call::page))
            .route("/fragments/calls/{call_id}", web::get().to(call::fragment))
            .route("/dead-letters", web::get().to(pages::dead_letters))
            .route("/dead-letters/replay", web::post().to(pages::replay))
            .route("/dead-letters/purge", web::post().to(pages::purge))
            .route("/playground", web::get().to(playground::page))
            .route("/playground", web::post().to(playground::page_posted))
            .route("/playground/preview", web::post().to(playground::preview))
            .route("/playground/send", web::post().to(playground::send))
            .route("/playground/save", web::post().to(playground::save))
            .route("/routes", web::get().to(routes::page))
            .route("/routes", web::post().to(routes::posted))
            .default_service(web::to(|| async { HttpResponse::NotFound().body("not found") }))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener);
    match server {
        Ok(server) => {
            tokio::spawn(server.run());
            // No `port=` field: that names the webhook listener in the line after this one.
            tracing::info!(console = %format!("http://{}", shown(&admin.listen, port)), "Console ready.");
            Some((port, copy))
        }
        Err(e) => {
            tracing::error!(error = %e, "Cannot serve the console; the relay runs without it.");
            None
        }
    }
}

/// The console's stylesheet, followed by every platform's preview styles.
fn stylesheet() -> &'static str {
    static CSS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CSS.get_or_init(|| crate::platforms::all().fold(STYLE.to_owned(), |css, p| css + "\n" + p.preview_css()))
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok().content_type(content_type).body(body)
}

/// `listen` with the port actually bound.
fn shown(listen: &str, port: u16) -> String {
    let host = listen.rsplit_once(':').map_or(listen, |(h, _)| h);
    format!("{host}:{port}")
}
