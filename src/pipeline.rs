//! The middle of the pipeline for one accepted event: route, then render for each channel, giving
//! what to commit to the store. Pure apart from logging; no I/O.

use serde_json::Value;

use crate::config::Config;
use crate::event::{Event, EventType};
use crate::store::{NewDeadLetter, NewDelivery};
use crate::telemetry;

/// The template context and route input for an event.
pub fn context(event: &Event) -> Value {
    serde_json::to_value(event).expect("an Event always serialises")
}

/// What an event becomes: posts to queue, and render failures to keep as dead letters.
#[derive(Debug, Default)]
pub struct Plan {
    /// Posts, per channel in route order, each message's posts in order.
    pub deliveries: Vec<NewDelivery>,
    /// Channels whose template failed for this event, with the event kept for a replay.
    pub dead: Vec<NewDeadLetter>,
}

impl Plan {
    /// The channels that get posts.
    pub fn channels(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for d in &self.deliveries {
            if !out.contains(&d.channel.as_str()) {
                out.push(&d.channel);
            }
        }
        out
    }
}

/// Routes and renders `event`. Disabled channels are skipped (and counted); render failures are
/// logged, counted and kept as dead letters.
pub fn plan(config: &Config, event: &Event) -> Plan {
    let ctx = context(event);
    let channels = config.router.route(event.event_type, &ctx);
    if channels.is_empty() {
        telemetry::event_unrouted(event.event_type, &event.call_id);
    }
    let mut plan = Plan::default();
    for name in channels {
        let channel = &config.channels[&name];
        if let Err(why) = &channel.target {
            telemetry::channel_skipped(&name, why, &event.call_id);
            continue;
        }
        match config.renderer.render(channel, event.event_type, &ctx) {
            Ok(rendered) => {
                if !rendered.notes.is_empty() {
                    telemetry::render_adjusted(&name, &event.call_id, &rendered.notes);
                }
                let coalesce = channel.coalesce && event.event_type == EventType::Message && rendered.posts.len() == 1;
                plan.deliveries.extend(rendered.posts.into_iter().map(|body| NewDelivery {
                    channel: name.clone(),
                    call_id: event.call_id.clone(),
                    event_type: event.event_type.as_str().to_owned(),
                    body,
                    coalesce,
                }));
            }
            Err(e) => {
                telemetry::render_failed(&e);
                plan.dead.push(NewDeadLetter {
                    channel: name.clone(),
                    call_id: event.call_id.clone(),
                    event_type: event.event_type.as_str().to_owned(),
                    body: None,
                    event: Some(ctx.to_string()),
                    reason: e.to_string(),
                });
            }
        }
    }
    plan
}
