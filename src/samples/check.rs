//! What `check` verifies beyond loading, shared with live reload: every channel's plan for every
//! built-in sample its routes send it (thread parent or name, posts, transcript, parent edit)
//! renders into valid, mention-safe bodies within the platform's limits.

use std::collections::BTreeSet;

use crate::event::{self, Event, EventType, Incoming};
use crate::intake;
use crate::plan::{plan, usual_call, Call};
use crate::platforms::{rules, Channel};
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
    for (ch, et) in &pairs {
        let channel = &config.channels[ch];
        for (name, ev) in events.iter().filter(|(_, e)| e.event_type == *et) {
            let ctx = intake::context(ev);
            let fail = |e: &dyn std::fmt::Display| format!("{e} [sample \"{name}\"]");
            // As the call's first event on the channel, and as it usually finds the call (a
            // summary after the call's messages, in their thread): every step of both plans.
            let calls = [Call::new_call(), usual_call(config, ch, *et)];
            let calls = if calls[0] == calls[1] { &calls[..1] } else { &calls[..] };
            for call in calls {
                report.rendered += 1;
                let planned = match plan(&config.renderer, channel, *et, &ctx, call) {
                    Ok(p) => p,
                    Err(e) => {
                        report.problems.push(fail(&e));
                        continue;
                    }
                };
                if let Some(Err(e)) = &planned.start {
                    report.problems.push(fail(e));
                }
                if let Some(Err(e)) = &planned.edit_parent {
                    report.problems.push(fail(e));
                }
                report.posts += planned.posts.len();
                for body in &planned.posts {
                    if let Some(m) = unsafe_body(channel, body) {
                        report.problems.push(format!("channel `{ch}`, sample \"{name}\": {m}"));
                    }
                }
            }
            // An utterance too long for a transcript message of its own is posted with the event
            // type's own template: it must render too.
            if channel.live_transcript && *et == EventType::Message {
                report.rendered += 1;
                if let Err(e) = config.renderer.render(channel, *et, &ctx) {
                    report.problems.push(fail(&e));
                }
            }
        }
    }
    report
}

fn unsafe_body(channel: &Channel, body: &str) -> Option<String> {
    rules(channel.platform).unsafe_text(&serde_json::from_str(body).ok()?)
}
