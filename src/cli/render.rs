//! `callrelay render`: the exact bodies an event becomes, per channel, without sending anything.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use crate::event::{self, Incoming};
use crate::plan::{plan, usual_call, Start, Where};
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
            // What the event becomes on the channel, as the lane plans it for the call as the event
            // usually finds it (see `usual_call`).
            let call = usual_call(config, &name, event.event_type);
            let planned = match plan(&config.renderer, channel, event.event_type, &ctx, &call) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    failed = true;
                    continue;
                }
            };
            let started = match &planned.start {
                Some(Ok(Start::Parent(parent))) => {
                    Some(format!("parent post (call_started), the posts below reply to it:\n{parent}"))
                }
                Some(Ok(Start::Named(name))) => {
                    Some(format!("the first post creates the thread {name:?}; the rest go into it"))
                }
                Some(Err(e)) => {
                    eprintln!("error: {e}");
                    failed = true;
                    None
                }
                None if planned.place == Where::FirstPostIsParent => {
                    Some("the summary is the thread's parent, its transcript replies to it".to_owned())
                }
                None => None,
            };
            if let Some(text) = started {
                println!("# {label} → channel `{name}`, thread per call: {text}");
            }
            if planned.transcript {
                println!("# {label} → channel `{name}`: joins the call's live transcript message, shown with this utterance alone");
            }
            let n = planned.posts.len();
            for (i, post) in planned.posts.iter().enumerate() {
                let template = config.renderer.template_for(&name, planned.kind).unwrap_or("?");
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
            for n in &planned.notes {
                println!("# note: {n}");
            }
            match &planned.edit_parent {
                Some(Ok(body)) => {
                    println!("# {label} → channel `{name}`: then the thread's parent is edited to:\n{body}")
                }
                Some(Err(e)) => {
                    eprintln!("error: {e}");
                    failed = true;
                }
                None => {}
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
