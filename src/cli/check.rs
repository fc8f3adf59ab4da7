//! `callrelay check`: everything `serve` would refuse or fail on, found before deploying.

use std::collections::BTreeSet;
use std::process::ExitCode;

use serde_json::Value;

use crate::config::{Config, ConfigError, ConfigSource, Platform};
use crate::event::{self, Event, Incoming};
use crate::{pipeline, samples};

/// Mention and link syntax that occurs only in the hostile sample, so finding it in a Slack body
/// means user text escaped escaping.
const HOSTILE_TOKENS: [&str; 4] = ["<@U123>", "<!subteam^S123>", "<#C123>", "<https://evil.example|click>"];

pub(super) fn run(source: &ConfigSource, loaded: Result<Config, ConfigError>) -> ExitCode {
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let file = source.display_name();
    let mut problems: Vec<String> =
        config.disabled_channels().map(|(name, why)| format!("{file}: channel `{name}`: disabled: {why}")).collect();

    println!("Configuration: {file}\n");
    let channel_rows = config
        .channels
        .values()
        .map(|c| {
            let target = match &c.target {
                Ok(url) => url.redacted(),
                Err(why) => format!("DISABLED: {why}"),
            };
            vec![c.name.clone(), c.platform.as_str().to_owned(), target]
        })
        .collect();
    print!("{}", table(&["CHANNEL", "KIND", "WEBHOOK"], channel_rows));
    println!();
    let route_rows = config
        .router
        .routes()
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "),
                r.channels.join(", "),
                r.describe_conditions(),
                if r.stop { "yes".into() } else { String::new() },
            ]
        })
        .collect();
    print!("{}", table(&["ROUTE", "EVENTS", "CHANNELS", "MATCH", "STOP"], route_rows));
    println!();

    let events: Vec<(&str, Event)> = samples::all()
        .into_iter()
        .filter_map(|s| match event::from_value(&s.body, chrono::Utc::now()) {
            Ok(Incoming::Event(e)) => Some((s.name, *e)),
            _ => None,
        })
        .collect();
    let mut pairs = BTreeSet::new();
    for route in config.router.routes() {
        for ch in &route.channels {
            for et in &route.events {
                pairs.insert((ch.clone(), *et));
            }
        }
    }
    let (mut rendered, mut posts) = (0, 0);
    for (ch, et) in &pairs {
        let channel = &config.channels[ch];
        for (name, ev) in events.iter().filter(|(_, e)| e.event_type == *et) {
            rendered += 1;
            match config.renderer.render(channel, *et, &pipeline::context(ev)) {
                Ok(r) => {
                    posts += r.posts.len();
                    for body in &r.posts {
                        if let Some(m) = unsafe_body(channel.platform, body) {
                            problems.push(format!("channel `{ch}`, sample \"{name}\": {m}"));
                        }
                    }
                }
                Err(e) => problems.push(format!("{e} [sample \"{name}\"]")),
            }
        }
    }
    println!("Rendered {rendered} samples for {} channel/event pairs into {posts} posts.", pairs.len());
    if problems.is_empty() {
        println!("OK: the configuration and templates are valid.");
        ExitCode::SUCCESS
    } else {
        eprintln!("\n{} problem{}:", problems.len(), if problems.len() == 1 { "" } else { "s" });
        for p in &problems {
            eprintln!("  - {p}");
        }
        ExitCode::FAILURE
    }
}

fn unsafe_body(platform: Platform, body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    match platform {
        Platform::Slack => {
            let mut strings = Vec::new();
            collect_strings(&value, &mut strings);
            HOSTILE_TOKENS
                .iter()
                .find(|t| strings.iter().any(|s| s.contains(*t)))
                .map(|t| format!("user text reached Slack unescaped (`{t}`); use {{{{value}}}}, not {{{{{{value}}}}}}"))
        }
        Platform::Discord => {
            value.get("allowed_mentions").is_none().then(|| "the body has no `allowed_mentions`".to_owned())
        }
    }
}

fn collect_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Value::Object(map) => map.values().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

/// Left-aligned columns, two spaces apart.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}
