//! The console's pages: the deliveries overview (channels, counts and chart, recent events;
//! refreshed in place by the script) and the dead letters with replay and purge (the
//! same effect as `callrelay dlq`).

use std::collections::BTreeMap;

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::frame::{html_page, layout};

use super::auth::{self, Sessions};
use crate::app::State;
use crate::store::{now_ms, Activity, RecentEvent};

/// The time left until `until_ms`, in words.
fn remaining(until_ms: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(((until_ms - now_ms()).max(0) / 1000) as u64)).to_string()
}

fn age(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return "—".into() };
    let secs = ((now_ms() - ms).max(0) / 1000) as u64;
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

/// The channels table: platform, state, queue depth and oldest waiting post.
async fn channels_table(state: &State) -> Markup {
    let config = state.snapshot.load().config.clone();
    let depths: BTreeMap<String, _> = match state.store.depths().await {
        Ok(d) => d.into_iter().map(|d| (d.channel.clone(), d)).collect(),
        Err(e) => return html! { p.error { "The store cannot be read: " (e.to_string()) } },
    };
    let holders: BTreeMap<String, String> =
        state.store.lanes().await.unwrap_or_default().into_iter().map(|l| (l.channel, l.owner)).collect();
    let disabled: BTreeMap<&str, &str> = config.disabled_channels().collect();
    let broken = state.dispatcher.broken();
    let me = state.dispatcher.owner();
    let hour_ago = now_ms() - 3_600_000;
    let activity = state.store.activity(hour_ago).await.unwrap_or_default();
    html! {
        table.channels id="channels" {
            thead { tr { th { "Channel" } th { "Platform" } th { "State" } th { "Waiting" } th { "Oldest waiting" }
                th { "Delivered (1 h)" } th { "Failing (1 h)" } th { "Per minute, last hour" } } }
            tbody {
                @for (name, channel) in &config.channels {
                    @let depth = depths.get(name);
                    tr {
                        td { (name) }
                        td { (channel.platform.as_str()) }
                        td {
                            @if let Some(why) = disabled.get(name.as_str()) { span.state.disabled { "disabled" } " " small { (why) } }
                            @else if let Some(why) = broken.get(name) { span.state.broken { "broken" } " " small { (why) } }
                            @else if let Some((why, until)) = state.dispatcher.paused(name) {
                                span.state.paused { "paused: " (why) } " " small { "for " (remaining(until)) } }
                            @else if holders.get(name).is_some_and(|o| o == me) { span.state.sending { "sending (this relay)" } }
                            @else if let Some(owner) = holders.get(name).filter(|o| !o.is_empty()) { span.state.elsewhere { "sent by " (owner) } }
                            @else { span.state { "starting" } }
                        }
                        td.num { (depth.map_or(0, |d| d.pending)) }
                        td { (age(depth.and_then(|d| d.oldest_ms))) }
                        @let mine: Vec<&Activity> = activity.iter().filter(|a| &a.channel == name).collect();
                        td.num { (mine.iter().map(|a| a.delivered).sum::<u64>()) }
                        td.num { (mine.iter().map(|a| a.failed).sum::<u64>()) }
                        td { (chart(&mine, hour_ago)) }
                    }
                }
            }
        }
    }
}

/// Events delivered (and failing, stacked above) per minute over the last hour: 60 bars of
/// inline SVG drawn here (no script, no chart library).
fn chart(activity: &[&Activity], since_ms: i64) -> Markup {
    let mut minutes = [(0u64, 0u64); 60];
    for a in activity {
        let i = ((a.minute_ms - since_ms).max(0) / 60_000) as usize;
        if let Some(m) = minutes.get_mut(i.min(59)) {
            m.0 += a.delivered;
            m.1 += a.failed;
        }
    }
    let top = minutes.iter().map(|(d, f)| d + f).max().unwrap_or(0).max(1) as f64;
    let (delivered, failed): (u64, u64) = minutes.iter().fold((0, 0), |(d, f), m| (d + m.0, f + m.1));
    let h = |n: u64| (n as f64 / top * 24.0).ceil();
    html! {
        svg.chart width="180" height="26" viewBox="0 0 180 26" role="img" {
            title { (delivered) " delivered, " (failed) " failing in the last hour (oldest minute on the left)" }
            rect x="0" y="25" width="180" height="1" fill="#ccc" {}
            @for (i, (d, f)) in minutes.iter().enumerate() {
                @if *d > 0 { rect x=(i * 3) y=(25.0 - h(*d)) width="2" height=(h(*d)) fill="#2e7d32" {} }
                @if *f > 0 { rect x=(i * 3) y=(25.0 - h(*d) - h(*f)) width="2" height=(h(*f)) fill="#c62828" {} }
            }
        }
    }
}

/// Recent events with each post's status (newest first, or a call's in order).
pub fn events_table(events: &[RecentEvent]) -> Markup {
    let when = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%H:%M:%S").to_string());
    html! {
        table.events {
            thead { tr { th { "Accepted (UTC)" } th { "Event" } th { "Call" } th { "Routes" } th { "Posts" } } }
            tbody {
                @for e in events {
                    tr {
                        td { (when(e.accepted_at_ms).unwrap_or_default()) }
                        td { (e.event_type) }
                        td { a href={ "/calls/" (urlencode(&e.call_id)) } { (e.call_id) } }
                        td { (e.routes.join(", ")) }
                        td {
                            @for p in &e.posts {
                                div.post {
                                    (p.channel) ": "
                                    span class={ "state " (p.status) } { (p.status.replace('_', " ")) }
                                    @if p.attempts > 0 { " after " (p.attempts) " failed attempt" @if p.attempts != 1 { "s" } }
                                    @if let Some(a) = &p.answer { " · " small { (a) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The live part of the overview: channels, then recent events.
async fn overview_parts(state: &State) -> Markup {
    let table = channels_table(state).await;
    let recent = state.store.recent(None, 50).await.unwrap_or_default();
    html! {
        (table)
        h2 { "Recent events" }
        @if recent.is_empty() { p { "None yet." } } @else { (events_table(&recent)) }
    }
}

pub async fn overview(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
) -> actix_web::Result<HttpResponse> {
    let session = auth::session(&req, &state, &sessions)?;
    let dead = state.store.dead_letters().await.map(|d| d.len()).unwrap_or(0);
    let parts = overview_parts(&state).await;
    let keep = humantime::format_duration(state.snapshot.load().config.admin.keep_events).to_string();
    Ok(html_page(layout(
        "Deliveries",
        auth::logout_csrf(&state, &sessions, &session).as_deref(),
        html! {
            p { "Each channel's state and queue, and the events of the last " (keep) " (" code { "admin.keep_events" }
                "), refreshed every two seconds. "
                a href="/dead-letters" { (dead) " dead letter" @if dead != 1 { "s" } } }
            div data-refresh="/fragments/overview" { (parts) }
        },
    )))
}

pub async fn overview_fragment(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
) -> actix_web::Result<HttpResponse> {
    auth::session(&req, &state, &sessions)?;
    Ok(html_page(overview_parts(&state).await))
}

pub async fn dead_letters(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
) -> actix_web::Result<HttpResponse> {
    let session = auth::session(&req, &state, &sessions)?;
    let csrf = sessions.csrf(&session);
    let letters = match state.store.dead_letters().await {
        Ok(l) => l,
        Err(e) => return Ok(HttpResponse::ServiceUnavailable().body(format!("the store cannot be read: {e}"))),
    };
    let when =
        |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
    Ok(html_page(layout(
        "Dead letters",
        auth::logout_csrf(&state, &sessions, &session).as_deref(),
        html! {
            @if letters.is_empty() { p { "No dead letters." } }
            @else {
                p { "Replaying queues the event again at the end of its channel's queue, rendered with the templates in force (as " code { "callrelay dlq replay" } ")." }
                form method="post" action="/dead-letters/replay" {
                    input type="hidden" name="csrf" value=(csrf);
                    table.letters {
                        thead { tr { th {} th { "Id" } th { "Failed" } th { "Channel" } th { "Event" } th { "Call" } th { "Attempts" } th { "Reason" } } }
                        tbody {
                            @for l in &letters {
                                tr {
                                    td { input type="checkbox" name="id" value=(l.id) aria-label={ "select " (l.id) }; }
                                    td.num { (l.id) }
                                    td { (when(l.failed_at_ms).unwrap_or_default()) }
                                    td { (l.channel) }
                                    td { (l.event_type) }
                                    td { (l.call_id) }
                                    td.num { (l.attempts) }
                                    td {
                                        (l.reason)
                                        details { summary { "event" } pre { (l.event.as_deref().or(l.body.as_deref()).unwrap_or("")) } }
                                    }
                                }
                            }
                        }
                    }
                    button type="submit" name="which" value="selected" { "Replay selected" }
                    " "
                    button type="submit" name="which" value="all" { "Replay all" }
                }
                form method="post" action="/dead-letters/purge" {
                    input type="hidden" name="csrf" value=(csrf);
                    button.danger type="submit" { "Purge all dead letters" }
                }
            }
        },
    )))
}

/// The value of `key` in a posted form (the first, when repeated).
pub fn field<'a>(form: &'a [(String, String)], key: &str) -> &'a str {
    form.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
}

pub async fn replay(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
    form: web::Form<Vec<(String, String)>>,
) -> actix_web::Result<HttpResponse> {
    auth::checked(&req, &state, &sessions, field(&form, "csrf"))?;
    let ids: Vec<i64> = if field(&form, "which") == "all" {
        state.store.dead_letters().await.unwrap_or_default().iter().map(|l| l.id).collect()
    } else {
        form.iter().filter(|(k, _)| k == "id").filter_map(|(_, v)| v.parse().ok()).collect()
    };
    for id in ids {
        match state.store.requeue(id).await {
            Ok(()) => tracing::info!(id, "Dead letter replayed from the console."),
            Err(e) => return Ok(HttpResponse::Conflict().body(format!("dead letter {id}: {e}"))),
        }
    }
    Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, "/dead-letters")).finish())
}

pub async fn purge(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
    form: web::Form<Vec<(String, String)>>,
) -> actix_web::Result<HttpResponse> {
    auth::checked(&req, &state, &sessions, field(&form, "csrf"))?;
    match state.store.purge(None).await {
        Ok(n) => tracing::info!(purged = n, "Dead letters purged from the console."),
        Err(e) => return Ok(HttpResponse::ServiceUnavailable().body(format!("the store failed: {e}"))),
    }
    Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, "/dead-letters")).finish())
}
