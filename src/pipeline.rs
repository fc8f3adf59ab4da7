//! The middle of the pipeline for one accepted event: route, then render for each channel, giving
//! the deliveries to queue. Pure apart from logging; no network I/O.

use serde_json::Value;

use crate::config::Config;
use crate::dispatch::Delivery;
use crate::event::Event;
use crate::telemetry;

/// The template context and route input for an event.
pub fn context(event: &Event) -> Value {
    serde_json::to_value(event).expect("an Event always serialises")
}

/// Routes and renders `event`, returning its deliveries in order: per channel, every post of the
/// rendered message. Disabled channels and render failures are logged and counted, and skipped.
pub fn deliveries(config: &Config, event: &Event) -> Vec<Delivery> {
    let ctx = context(event);
    let channels = config.router.route(event.event_type, &ctx);
    if channels.is_empty() {
        telemetry::event_unrouted(event.event_type, &event.call_id);
    }
    let mut out = Vec::new();
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
                out.extend(rendered.posts.into_iter().map(|body| Delivery {
                    channel: name.clone(),
                    call_id: event.call_id.clone(),
                    body,
                }));
            }
            Err(e) => telemetry::render_failed(&e),
        }
    }
    out
}
