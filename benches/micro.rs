//! Micro-benchmarks: the request path's CPU work (parse, normalise, route, serialise the event to
//! store), the lane's (render one stored event), and coalescing waiting posts.
//! `cargo bench --bench micro`.

use std::path::Path;

use callrelay::config::ConfigSource;
use callrelay::event::{self, Incoming};
use callrelay::{intake, samples};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::Value;

fn shipped() -> callrelay::setup::Config {
    callrelay::setup::load(&ConfigSource::File(Path::new(env!("CARGO_MANIFEST_DIR")).join("relay.toml"))).unwrap()
}

fn intake_and_render(c: &mut Criterion) {
    let config = shipped();
    let bodies: Vec<(&str, Vec<u8>)> = samples::all()
        .into_iter()
        .filter(|s| s.name == "message from the user" || s.name == "call_ended with user_name")
        .map(|s| (s.name, serde_json::to_vec(&s.body).unwrap()))
        .collect();
    for (name, body) in bodies {
        c.bench_function(&format!("intake (parse+route+serialise): {name}"), |b| {
            b.iter(|| {
                let Ok(Incoming::Event(e)) = event::parse(&body, chrono::Utc::now()) else { panic!() };
                intake::route(&config, &e, Default::default(), false)
            })
        });
        let Ok(Incoming::Event(e)) = event::parse(&body, chrono::Utc::now()) else { panic!() };
        let stored = intake::route(&config, &e, Default::default(), false);
        c.bench_function(&format!("lane (render a stored event): {name}"), |b| {
            b.iter(|| {
                let ctx: Value = serde_json::from_str(&stored.event).unwrap();
                let mut posts = 0;
                for ch in &stored.channels {
                    posts += config.renderer.render(&config.channels[ch], e.event_type, &ctx).unwrap().posts.len();
                }
                posts
            })
        });
    }
}

fn coalesce(c: &mut Criterion) {
    let config = shipped();
    let render = |channel: &str, i: usize| -> Value {
        let body = serde_json::json!({"event_type":"message","call_id":"c","message":{"sender":"user","message":format!("message #n{i}"),"sent_at":"2024-01-15T10:30:00Z"}});
        let Ok(Incoming::Event(e)) = event::from_value(&body, chrono::Utc::now()) else { panic!() };
        let posts =
            config.renderer.render(&config.channels[channel], e.event_type, &intake::context(&e)).unwrap().posts;
        serde_json::from_str(&posts[0]).unwrap()
    };
    let slack: Vec<Value> = (0..64).map(|i| render("live", i)).collect();
    let discord: Vec<Value> = (0..64).map(|i| render("summaries", i)).collect();
    c.bench_function("coalesce 64 waiting Slack posts", |b| {
        b.iter_batched(
            || slack.clone(),
            |posts| {
                let mut merged = posts[0].clone();
                posts[1..].iter().take_while(|p| callrelay::platforms::slack::merge(&mut merged, p)).count()
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("coalesce 64 waiting Discord posts", |b| {
        b.iter_batched(
            || discord.clone(),
            |posts| {
                let mut merged = posts[0].clone();
                posts[1..].iter().take_while(|p| callrelay::platforms::discord::merge(&mut merged, p)).count()
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, intake_and_render, coalesce);
criterion_main!(benches);
