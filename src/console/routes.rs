//! The route tester: for a built-in sample or a pasted event, every route with each of its tests
//! shown as held or not, and the channels the event would reach (the router's own evaluation).

use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

use super::auth::{self, Sessions};
use super::frame::{html_page, layout};
use super::playground::{event_text, Form};
use crate::app::State;
use crate::event::{self, Incoming};

fn page_with(state: &State, sessions: &Sessions, session: &str, form: &Form) -> HttpResponse {
    let config = state.snapshot.load().config.clone();
    let text = event_text(form);
    let parsed = serde_json::from_str(&text).map_err(|e| format!("The event is not JSON: {e}")).and_then(|v| {
        match event::from_value(&v, chrono::Utc::now()) {
            Ok(Incoming::Event(e)) => Ok(e),
            Ok(_) => Err("The relay ignores this event (an unknown event type).".to_owned()),
            Err(e) => Err(format!("The relay would refuse this event: {e}")),
        }
    });
    let samples = crate::samples::all();
    let csrf = sessions.csrf(session);
    let disabled: Vec<&str> = config.disabled_channels().map(|(name, _)| name).collect();
    html_page(layout(
        "Route tester",
        auth::logout_csrf(state, sessions, session).as_deref(),
        html! {
            form method="post" action="/routes" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Sample event " select name="sample" {
                    @for (i, s) in samples.iter().enumerate() { option value=(i) selected[form.sample == i.to_string()] { (s.name) } }
                } }
                label { "Or paste an event (JSON; it wins when not empty)"
                    textarea name="event" rows="10" spellcheck="false" { (form.event.clone().unwrap_or_default()) } }
                button type="submit" { "Test the routes" }
            }
            @match parsed {
                Err(why) => p.error { (why) },
                Ok(event) => {
                    @let context = crate::intake::context(&event);
                    @let reached = config.router.route(event.event_type, &context);
                    p.verdict {
                        @if reached.is_empty() { "This event reaches no channel." }
                        @else {
                            "This event reaches: "
                            @for (i, ch) in reached.iter().enumerate() {
                                @if i > 0 { ", " }
                                strong { (ch) }
                                @if disabled.contains(&ch.as_str()) { " (disabled: its URL variable is unset)" }
                            }
                        }
                    }
                    @for (route, checks, matched, stopped) in evaluated(&config.router, event.event_type, &context) {
                        section.route {
                            h3 {
                                (route.name) " "
                                @if stopped { span.state { "not evaluated (an earlier route stopped)" } }
                                @else if matched { span.state.sending { "matches" } }
                                @else { span.state.broken { "does not match" } }
                            }
                            table {
                                thead { tr { th { "Test" } th { "The event has" } th { "Held" } } }
                                tbody {
                                    @for c in &checks {
                                        tr { td { (c.test) } td { code { (c.found) } } td { @if c.held { "yes" } @else { "no" } } }
                                    }
                                }
                            }
                            p { "Channels: " (route.channels.join(", ")) @if route.stop { " · stops evaluation when it matches" } }
                        }
                    }
                }
            }
        },
    ))
}

/// Every route with its checks, whether it matched, and whether an earlier route's `stop` ended
/// evaluation before it (as the router does).
fn evaluated<'a>(
    router: &'a crate::routing::Router,
    event_type: crate::event::EventType,
    context: &serde_json::Value,
) -> Vec<(&'a crate::routing::Route, Vec<crate::routing::Check>, bool, bool)> {
    let mut stopped = false;
    router
        .routes()
        .iter()
        .map(|route| {
            let checks = route.explain(event_type, context);
            let matched = checks.iter().all(|c| c.held);
            let row = (route, checks, matched, stopped);
            stopped |= matched && route.stop;
            row
        })
        .collect()
}

pub async fn page(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
    query: web::Query<Form>,
) -> actix_web::Result<HttpResponse> {
    let session = auth::session(&req, &state, &sessions)?;
    Ok(page_with(&state, &sessions, &session, &query))
}

pub async fn posted(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
    form: web::Form<Form>,
) -> actix_web::Result<HttpResponse> {
    let session = auth::checked(&req, &state, &sessions, &form.csrf)?;
    Ok(page_with(&state, &sessions, &session, &form))
}
