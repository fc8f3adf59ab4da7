//! Intake, between the receiver and the store: an accepted event routed into what to commit (the
//! event and one queue entry per channel).
//! Pure apart from logging; no I/O, and no rendering (each channel's lane renders at delivery).

use serde_json::Value;

use crate::event::Event;
use crate::setup::Config;
use crate::store::NewEvent;
use crate::telemetry;

/// The template context and route input for an event.
pub fn context(event: &Event) -> Value {
    serde_json::to_value(event).expect("an Event always serialises")
}

/// Routes `event`: the event to commit with the channels to queue it for (none when no route
/// matched; disabled channels are skipped and counted).
pub fn route(config: &Config, event: &Event) -> NewEvent {
    let ctx = if config.router.needs_context() { context(event) } else { Value::Null };
    let (routes, routed) = config.router.route_named(event.event_type, &ctx);
    if routed.is_empty() {
        telemetry::event_unrouted(event.event_type, &event.call_id);
    }
    let channels = routed
        .into_iter()
        .filter(|name| match &config.channels[name].target {
            Ok(_) => true,
            Err(why) => {
                telemetry::channel_skipped(name, why, &event.call_id);
                false
            }
        })
        .collect();
    NewEvent {
        call_id: event.call_id.clone(),
        event_type: event.event_type.as_str().to_owned(),
        event: serde_json::to_string(event).expect("an Event always serialises"),
        channels,
        routes,
        recent: config.admin.enabled && !config.admin.keep_events.is_zero(),
    }
}
