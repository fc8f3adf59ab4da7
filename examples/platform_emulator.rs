//! Slack and Discord incoming webhooks emulated on loopback, with their documented limits, for the
//! delivery benchmark: Slack 1 post per second per webhook (429 + `Retry-After` beyond it);
//! Discord 5 per 2 s and 30 per 60 s per webhook (429 + JSON `retry_after` and `X-RateLimit-*`
//! headers). `GET /stats` reports posts, 429s, the sequence of delivered message numbers with the
//! time each arrived, and the time of the last accepted post.
//!
//! `cargo run --release --example platform_emulator -- 127.0.0.1:0` prints `listening on PORT`;
//! a second argument `unlimited` turns the limits off (for the end-to-end latency run).
//! Slack: `POST /services/T/B/bench`; Discord: `POST /api/v10/webhooks/1/bench?wait=true`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};

#[derive(Default)]
struct Platform {
    sent: VecDeque<Instant>,
    posts: u64,
    limited: u64,
    /// Numbers found in delivered bodies (`#123`), in arrival order.
    sequence: Vec<u64>,
    /// When each number of `sequence` arrived (Unix microseconds).
    arrived_us: Vec<u64>,
    last_ms: u128,
}

struct Emulator {
    slack: Mutex<Platform>,
    discord: Mutex<Platform>,
    unlimited: bool,
}

/// Returns how long to wait if a post now would break a window.
fn over(p: &Platform, windows: &[(usize, Duration)], now: Instant) -> Option<Duration> {
    windows
        .iter()
        .filter(|(n, _)| p.sent.len() >= *n)
        .map(|(n, per)| (p.sent[p.sent.len() - n] + *per).saturating_duration_since(now))
        .filter(|d| !d.is_zero())
        .max()
}

/// The distinct message numbers (`#n123`) in a body, in order of first appearance (a Slack body
/// carries each text twice: the `text` fallback and a block).
fn numbers(body: &str) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find("#n") {
        rest = &rest[i + 2..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if let Ok(n) = digits.parse() {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

fn accept(p: &mut Platform, body: &str, now: Instant) {
    p.sent.push_back(now);
    while p.sent.len() > 64 {
        p.sent.pop_front();
    }
    p.posts += 1;
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    for n in numbers(body) {
        p.sequence.push(n);
        p.arrived_us.push(since_epoch.as_micros() as u64);
    }
    p.last_ms = since_epoch.as_millis();
}

async fn slack(state: web::Data<Emulator>, body: String) -> HttpResponse {
    let now = Instant::now();
    let mut p = state.slack.lock().unwrap();
    // Loopback jitter allowance of 20 ms.
    let limit = over(&p, &[(1, Duration::from_millis(980))], now).filter(|_| !state.unlimited);
    if let Some(wait) = limit {
        p.limited += 1;
        return HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", wait.as_secs().max(1).to_string()))
            .body("rate_limited");
    }
    if serde_json::from_str::<Value>(&body).is_err() {
        return HttpResponse::BadRequest().body("invalid_payload");
    }
    accept(&mut p, &body, now);
    HttpResponse::Ok().body("ok")
}

async fn discord(state: web::Data<Emulator>, body: String) -> HttpResponse {
    let now = Instant::now();
    let windows = [(5, Duration::from_millis(1980)), (30, Duration::from_millis(59_900))];
    let mut p = state.discord.lock().unwrap();
    if let Some(wait) = over(&p, &windows, now).filter(|_| !state.unlimited) {
        p.limited += 1;
        return HttpResponse::TooManyRequests()
            .insert_header(("X-RateLimit-Remaining", "0"))
            .insert_header(("X-RateLimit-Reset-After", format!("{:.3}", wait.as_secs_f64())))
            .json(
                json!({"message": "You are being rate limited.", "retry_after": wait.as_secs_f64(), "global": false}),
            );
    }
    if serde_json::from_str::<Value>(&body).is_err() {
        return HttpResponse::BadRequest().json(json!({"code": 50109}));
    }
    accept(&mut p, &body, now);
    // The per-webhook bucket: 5 per 2 s; Reset-After is when the oldest post in it leaves.
    let in_window: Vec<&Instant> = p.sent.iter().filter(|t| now.duration_since(**t) < Duration::from_secs(2)).collect();
    let reset_after =
        in_window.first().map_or(0.0, |t| (**t + Duration::from_secs(2)).saturating_duration_since(now).as_secs_f64());
    HttpResponse::Ok()
        .insert_header(("X-RateLimit-Limit", "5"))
        .insert_header((
            "X-RateLimit-Remaining",
            if state.unlimited { "1000".to_owned() } else { 5usize.saturating_sub(in_window.len()).to_string() },
        ))
        .insert_header(("X-RateLimit-Reset-After", format!("{reset_after:.3}")))
        .json(json!({"id": p.posts.to_string()}))
}

async fn stats(state: web::Data<Emulator>) -> HttpResponse {
    let view = |p: &Platform| json!({"posts": p.posts, "limited": p.limited, "sequence": p.sequence, "arrived_us": p.arrived_us, "last_ms": p.last_ms as u64});
    HttpResponse::Ok()
        .json(json!({"slack": view(&state.slack.lock().unwrap()), "discord": view(&state.discord.lock().unwrap())}))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = std::net::TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?.port());
    let unlimited = std::env::args().nth(2).as_deref() == Some("unlimited");
    let state = web::Data::new(Emulator { slack: Mutex::default(), discord: Mutex::default(), unlimited });
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(1 << 20))
            .route("/services/T/B/bench", web::post().to(slack))
            .route("/api/v10/webhooks/1/bench", web::post().to(discord))
            .route("/stats", web::get().to(stats))
    })
    .workers(1)
    .listen(listener)?
    .run()
    .await
}
