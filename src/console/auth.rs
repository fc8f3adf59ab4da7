//! Who may use the console. On loopback without `admin.token`: whoever can reach this machine's
//! loopback. Otherwise a login form exchanges the token for a session cookie (HttpOnly,
//! SameSite=Strict, 12 hours). Every state-changing form carries a CSRF token derived from the
//! session (HMAC with a key made at start), checked in constant time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{http::header, web, HttpRequest, HttpResponse};
use hmac::{Hmac, Mac};
use maud::html;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::frame::layout;
use crate::app::State;

const COOKIE: &str = "callrelay_console";
const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Open sessions and the CSRF key.
pub struct Sessions {
    open: Mutex<HashMap<String, Instant>>,
    key: [u8; 32],
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new()
    }
}

impl Sessions {
    /// No sessions; a fresh CSRF key.
    pub fn new() -> Sessions {
        Sessions { open: Mutex::new(HashMap::new()), key: random() }
    }

    fn create(&self) -> String {
        let id = hex(&random());
        let mut open = self.open.lock().expect("not poisoned");
        open.retain(|_, at| at.elapsed() < LIFETIME);
        open.insert(id.clone(), Instant::now());
        id
    }

    fn valid(&self, id: &str) -> bool {
        self.open.lock().expect("not poisoned").get(id).is_some_and(|at| at.elapsed() < LIFETIME)
    }

    fn end(&self, id: &str) {
        self.open.lock().expect("not poisoned").remove(id);
    }

    /// The CSRF token of a session (`loopback` when there is no login).
    pub fn csrf(&self, session: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(session.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `token` is the session's CSRF token.
    pub fn csrf_ok(&self, session: &str, token: &str) -> bool {
        self.csrf(session).as_bytes().ct_eq(token.as_bytes()).into()
    }
}

fn random() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).expect("the OS has randomness");
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A refusal carrying the answer to send (handlers return it with `?`).
fn refuse(answer: HttpResponse) -> actix_web::Error {
    actix_web::error::InternalError::from_response("refused", answer).into()
}

/// The caller's session (its CSRF subject), or the answer to send instead: a redirect to the login
/// form for a page, 401 for anything else.
pub fn session(req: &HttpRequest, state: &State, sessions: &Sessions) -> actix_web::Result<String> {
    if state.snapshot.load().config.admin.token.is_none() {
        // No login on loopback; but a page whose host name was re-pointed at 127.0.0.1 (DNS
        // rebinding) would be "same origin": only loopback host names are served.
        let host = req.connection_info().host().to_owned();
        let name = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h).trim_matches(|c| c == '[' || c == ']');
        let loopback = name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(refuse(
                HttpResponse::Forbidden().body("the console answers only to a loopback host name here"),
            ));
        }
        return Ok("loopback".into());
    }
    match req.cookie(COOKIE) {
        Some(c) if sessions.valid(c.value()) => Ok(c.value().to_owned()),
        _ if req.method() == actix_web::http::Method::GET => {
            Err(refuse(HttpResponse::SeeOther().insert_header((header::LOCATION, "/login")).finish()))
        }
        _ => Err(refuse(HttpResponse::Unauthorized().body("log in first"))),
    }
}

/// The logout form's CSRF token, when there is a login to end.
pub fn logout_csrf(state: &State, sessions: &Sessions, session: &str) -> Option<String> {
    state.snapshot.load().config.admin.token.as_ref().map(|_| sessions.csrf(session))
}

/// A state-changing request: its session, if its CSRF token is right.
pub fn checked(req: &HttpRequest, state: &State, sessions: &Sessions, csrf: &str) -> actix_web::Result<String> {
    let session = session(req, state, sessions)?;
    if sessions.csrf_ok(&session, csrf) {
        Ok(session)
    } else {
        Err(refuse(HttpResponse::Forbidden().body("the form's CSRF token is missing or wrong; reload the page")))
    }
}

pub async fn login_form(state: web::Data<State>) -> HttpResponse {
    page(&state, None)
}

fn page(state: &State, problem: Option<&str>) -> HttpResponse {
    let needed = state.snapshot.load().config.admin.token.is_some();
    let body = layout(
        "Log in",
        None,
        html! {
            @if !needed { p { "No login is needed on this address. " a href="/" { "Open the console" } } }
            @else {
                form.login method="post" action="/login" {
                    label { "Console token (" code { "admin.token" } ")" input type="password" name="token" autofocus; }
                    button type="submit" { "Log in" }
                }
                @if let Some(p) = problem { p.error { (p) } }
            }
        },
    );
    let status =
        if problem.is_some() { actix_web::http::StatusCode::UNAUTHORIZED } else { actix_web::http::StatusCode::OK };
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body.into_string())
}

pub async fn login(
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let expected = state.snapshot.load().config.admin.token.clone();
    let Some(expected) = expected else {
        return HttpResponse::SeeOther().insert_header((header::LOCATION, "/")).finish();
    };
    let given = form.get("token").map(String::as_str).unwrap_or("");
    if !bool::from(given.as_bytes().ct_eq(expected.expose().as_bytes())) {
        // Slows guessing; the token itself should be long and random.
        tokio::time::sleep(Duration::from_millis(300)).await;
        tracing::warn!("A console login failed.");
        return page(&state, Some("That is not the console token."));
    }
    let cookie = Cookie::build(COOKIE, sessions.create())
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .max_age(actix_web::cookie::time::Duration::seconds(LIFETIME.as_secs() as i64))
        .finish();
    HttpResponse::SeeOther().cookie(cookie).insert_header((header::LOCATION, "/")).finish()
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
    form: web::Form<HashMap<String, String>>,
) -> actix_web::Result<HttpResponse> {
    let session = checked(&req, &state, &sessions, form.get("csrf").map(String::as_str).unwrap_or(""))?;
    sessions.end(&session);
    let mut gone = Cookie::new(COOKIE, "");
    gone.make_removal();
    Ok(HttpResponse::SeeOther().cookie(gone).insert_header((header::LOCATION, "/login")).finish())
}
