//! `callrelay render`: the exact bodies an event becomes, per channel, without sending anything.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use crate::config::Threads;
use crate::event::{self, EventType, Incoming};
use crate::platforms::{rules, ThreadStyle};
use crate::setup::Config;
use crate::{intake, samples};

pub(super) fn run(config: &Config, event_file: Option<&Path>, only: Option<&str>, pretty: bool) -> ExitCode {
    if let Some(name) = only {
        if !config.channels.contains_key(name) {
            eprintln!("error: no channel `{name}` in {}", config.source.display_name());
            return ExitCode::FAILURE;
        }
    }
    let bodies: Vec<(String, serde_json::Value)> = match event_file {
        None => samples::all().into_iter().map(|s| (format!("sample: {}", s.name), s.body)).collect(),
        Some(path) => match read_event(path) {
            Ok(v) => vec![(path.display().to_string(), v)],
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let mut failed = false;
    for (label, body) in bodies {
        let event = match event::from_value(&body, chrono::Utc::now()) {
            Ok(Incoming::Event(e)) => e,
            Ok(Incoming::Unknown(t)) => {
                println!("# {label}: event type `{t}` is not routed");
                continue;
            }
            Err(e) => {
                eprintln!("error: {label}: {e}");
                failed = true;
                continue;
            }
        };
        let ctx = intake::context(&event);
        let routed = config.router.route(event.event_type, &ctx);
        let channels: Vec<String> = match only {
            Some(name) => vec![name.to_owned()],
            None => routed.clone(),
        };
        if channels.is_empty() {
            println!("# {label}: no route matches; nothing would be sent");
        }
        for name in channels {
            let channel = &config.channels[&name];
            let note = if routed.contains(&name) { "" } else { " (no route sends this event here)" };
            if channel.threads == Threads::PerCall {
                // What starts the call's thread when this is its first event on the channel.
                let started = match rules(channel.platform).threads() {
                    ThreadStyle::Parent => config.renderer.render_kind(channel, "thread_parent", &ctx).map(|r| {
                        format!("parent post (thread_parent), the posts below reply to it:\n{}", r.posts.join("\n"))
                    }),
                    ThreadStyle::Named { .. } => config
                        .renderer
                        .thread_name(channel, &ctx)
                        .map(|t| format!("the first post creates the thread {t:?}; the rest go into it")),
                };
                match started {
                    Ok(text) => println!("# {label} → channel `{name}`, thread per call: {text}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        failed = true;
                    }
                }
            }
            let transcribed = channel.live_transcript && event.event_type == EventType::Message;
            let rendered = if transcribed {
                // The utterance joins the call's transcript message (shown here as the first).
                println!("# {label} → channel `{name}`: joins the call's live transcript message, shown with this utterance alone");
                let mut transcript = ctx.clone();
                transcript["messages"] = serde_json::Value::Array(vec![ctx["message"].clone()]);
                transcript["part"] = serde_json::Value::from(1);
                config.renderer.render_kind(channel, "transcript", &transcript)
            } else {
                config.renderer.render(channel, event.event_type, &ctx)
            };
            match rendered {
                Ok(r) => {
                    let n = r.posts.len();
                    for (i, post) in r.posts.iter().enumerate() {
                        let kind = if transcribed { "transcript" } else { event.event_type.as_str() };
                        let template = config.renderer.template_for(&name, kind).unwrap_or("?");
                        println!(
                            "# {label} → channel `{name}` ({}, {template}), post {}/{n}{note}",
                            channel.platform.as_str(),
                            i + 1
                        );
                        if pretty {
                            let v: serde_json::Value = serde_json::from_str(post).expect("rendered posts are JSON");
                            println!("{}", serde_json::to_string_pretty(&v).expect("JSON serialises"));
                        } else {
                            println!("{post}");
                        }
                    }
                    for n in r.notes {
                        println!("# note: {n}");
                    }
                    let edits_parent = channel.threads == Threads::PerCall
                        && rules(channel.platform).threads() == ThreadStyle::Parent
                        && event.event_type == EventType::CallEnded;
                    if edits_parent {
                        // After the summary, the thread's parent is edited to show the outcome.
                        match config.renderer.render_kind(channel, "thread_parent", &ctx) {
                            Ok(r) => println!(
                                "# {label} → channel `{name}`: then the thread's parent is edited to:\n{}",
                                r.posts.join("\n")
                            ),
                            Err(e) => {
                                eprintln!("error: {e}");
                                failed = true;
                            }
                        }
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    failed = true;
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn read_event(path: &Path) -> Result<serde_json::Value, String> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).map_err(|e| format!("standard input: {e}"))?;
    } else {
        text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    serde_json::from_str(&text).map_err(|e| format!("{}: not valid JSON: {e}", path.display()))
}
