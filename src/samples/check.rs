//! What `check` verifies beyond loading, shared with live reload: every route's templates render
//! every built-in sample into valid, mention-safe bodies within the platform's limits.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::config::{Channel, Threads};
use crate::event::{self, Event, EventType, Incoming};
use crate::intake;
use crate::platforms::{rules, ThreadStyle};
use crate::setup::Config;

/// The result of rendering the samples.
#[derive(Debug, Default)]
pub struct Report {
    /// Channel/event pairs that routes use.
    pub pairs: usize,
    /// Samples rendered.
    pub rendered: usize,
    /// Posts they became.
    pub posts: usize,
    /// Everything wrong, each naming template, line, channel and sample.
    pub problems: Vec<String>,
}

/// Renders every sample through every channel/event pair the routes use.
pub fn check(config: &Config) -> Report {
    let events: Vec<(&str, Event)> = super::all()
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
    let mut report = Report { pairs: pairs.len(), ..Report::default() };
    // A live transcript channel's transcript template, with each message sample as its content.
    for (ch, _) in pairs.iter().filter(|(ch, et)| *et == EventType::Message && config.channels[ch].live_transcript) {
        let channel = &config.channels[ch];
        for (name, ev) in events.iter().filter(|(_, e)| e.event_type == EventType::Message) {
            report.rendered += 1;
            let mut ctx = intake::context(ev);
            ctx["messages"] = Value::Array(vec![ctx["message"].clone()]);
            ctx["part"] = Value::from(1);
            if let Err(e) = config.renderer.render_kind(channel, "transcript", &ctx) {
                report.problems.push(format!("{e} [sample \"{name}\"]"));
            }
        }
    }
    // A threaded channel's thread template is rendered with every sample its routes send it.
    let threaded: BTreeSet<&String> =
        pairs.iter().map(|(ch, _)| ch).filter(|ch| config.channels[*ch].threads == Threads::PerCall).collect();
    for ch in threaded {
        let channel = &config.channels[ch];
        for (name, ev) in events.iter().filter(|(_, e)| pairs.contains(&(ch.clone(), e.event_type))) {
            report.rendered += 1;
            let ctx = intake::context(ev);
            let outcome = match rules(channel.platform).threads() {
                ThreadStyle::Parent => config.renderer.render_kind(channel, "thread_parent", &ctx).map(|_| ()),
                ThreadStyle::Named { .. } => config.renderer.thread_name(channel, &ctx).map(|_| ()),
            };
            if let Err(e) = outcome {
                report.problems.push(format!("{e} [sample \"{name}\"]"));
            }
        }
    }
    for (ch, et) in &pairs {
        let channel = &config.channels[ch];
        for (name, ev) in events.iter().filter(|(_, e)| e.event_type == *et) {
            report.rendered += 1;
            match config.renderer.render(channel, *et, &intake::context(ev)) {
                Ok(r) => {
                    report.posts += r.posts.len();
                    for body in &r.posts {
                        if let Some(m) = unsafe_body(channel, body) {
                            report.problems.push(format!("channel `{ch}`, sample \"{name}\": {m}"));
                        }
                    }
                }
                Err(e) => report.problems.push(format!("{e} [sample \"{name}\"]")),
            }
        }
    }
    report
}

fn unsafe_body(channel: &Channel, body: &str) -> Option<String> {
    rules(channel.platform).unsafe_text(&serde_json::from_str(body).ok()?)
}
