//! The ingest ceiling for the benchmarks: an actix-web server that only parses the JSON body and
//! answers 200, on the same worker count as the relay. `cargo run --release --example bare_ingest -- 127.0.0.1:0`
//! prints `listening on PORT`.

use actix_web::{web, App, HttpResponse, HttpServer};

/// The relay's allocator, so the ceiling is what actix-web and serde do at their best.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn ingest(body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) if v.get("event_type").and_then(|t| t.as_str()).is_some() => {
            HttpResponse::Ok().json(serde_json::json!({"status": "accepted"}))
        }
        _ => HttpResponse::BadRequest().finish(),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = std::net::TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?.port());
    HttpServer::new(|| App::new().app_data(web::PayloadConfig::new(1 << 20)).route("/webhook", web::post().to(ingest)))
        .listen(listener)?
        .run()
        .await
}
