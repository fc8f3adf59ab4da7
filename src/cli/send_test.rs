//! `callrelay send-test`: renders a sample (or a given event) with a channel's templates, posts it
//! to the real channel, and prints the platform's answer.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

use crate::event::{self, Incoming};
use crate::platforms::{self, Outcome};
use crate::setup::Config;
use crate::{intake, samples};

pub(super) fn run(config: &Config, channel: &str, event_file: Option<&Path>) -> ExitCode {
    let Some(ch) = config.channels.get(channel) else {
        let known: Vec<&str> = config.channels.keys().map(String::as_str).collect();
        return fail(&format!(
            "no channel `{channel}` in {} (defined: {})",
            config.source.display_name(),
            known.join(", ")
        ));
    };
    let target = match &ch.target {
        Ok(target) => target.shown(),
        Err(why) => return fail(&format!("channel `{channel}` is disabled: {why}")),
    };
    let body: Value = match event_file {
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => return fail(&format!("{}: {e}", path.display())),
        },
        None => samples::all().into_iter().find(|s| s.name == "test event").expect("the test sample exists").body,
    };
    let event = match event::from_value(&body, chrono::Utc::now()) {
        Ok(Incoming::Event(e)) => e,
        Ok(Incoming::Unknown(t)) => return fail(&format!("event type `{t}` has no template")),
        Err(e) => return fail(&e),
    };
    let rendered = match config.renderer.render(ch, event.event_type, &intake::context(&event)) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a Tokio runtime starts");
    let client = runtime.block_on(async { platforms::http_client(config.delivery.request_timeout) });
    let sink = platforms::sink_for(ch, &client).expect("an enabled channel has a sink");
    let n = rendered.posts.len();
    let mut ok = true;
    for (i, post) in rendered.posts.iter().enumerate() {
        print!("Post {}/{n} to `{channel}` ({}, {target}): ", i + 1, ch.platform.as_str());
        let posted = runtime.block_on(sink.post(post, &platforms::Place::Channel));
        println!("{}", posted.answer);
        ok &= posted.outcome == Outcome::Delivered;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}
