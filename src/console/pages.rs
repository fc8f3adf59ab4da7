//! The console's pages: the layout every page shares, the channels overview (refreshed in place
//! by the script), and the dead letters with replay and purge (the same effect as `callrelay dlq`).

use std::collections::BTreeMap;

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use maud::{html, Markup, DOCTYPE};

use super::auth::{self, Sessions};
use crate::server::State;
use crate::store::now_ms;

/// A whole page: `logout` (the session's CSRF token, when there is a login) adds the logout button.
pub fn layout(title: &str, logout: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · callrelay" }
                link rel="stylesheet" href="/static/console.css";
                script src="/static/console.js" defer {}
            }
            body {
                nav {
                    strong { "callrelay" }
                    a href="/" { "Deliveries" }
                    a href="/playground" { "Playground" }
                    a href="/routes" { "Route tester" }
                    a href="/dead-letters" { "Dead letters" }
                    @if let Some(csrf) = logout {
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

pub fn html_page(markup: Markup) -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(markup.into_string())
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
    html! {
        table.channels id="channels" {
            thead { tr { th { "Channel" } th { "Platform" } th { "State" } th { "Waiting" } th { "Oldest waiting" } } }
            tbody {
                @for (name, channel) in &config.channels {
                    @let depth = depths.get(name);
                    tr {
                        td { (name) }
                        td { (channel.platform.as_str()) }
                        td {
                            @if let Some(why) = disabled.get(name.as_str()) { span.state.disabled { "disabled" } " " small { (why) } }
                            @else if let Some(why) = broken.get(name) { span.state.broken { "broken" } " " small { (why) } }
                            @else if holders.get(name).is_some_and(|o| o == me) { span.state.sending { "sending (this relay)" } }
                            @else if let Some(owner) = holders.get(name).filter(|o| !o.is_empty()) { span.state.elsewhere { "sent by " (owner) } }
                            @else { span.state { "starting" } }
                        }
                        td.num { (depth.map_or(0, |d| d.pending)) }
                        td { (age(depth.and_then(|d| d.oldest_ms))) }
                    }
                }
            }
        }
    }
}

pub async fn overview(req: HttpRequest, state: web::Data<State>, sessions: web::Data<Sessions>) -> HttpResponse {
    let session = match auth::session(&req, &state, &sessions) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let dead = state.store.dead_letters().await.map(|d| d.len()).unwrap_or(0);
    let table = channels_table(&state).await;
    html_page(layout(
        "Deliveries",
        auth::logout_csrf(&state, &sessions, &session).as_deref(),
        html! {
            p { "Each channel's state and queue, refreshed every two seconds. "
                a href="/dead-letters" { (dead) " dead letter" @if dead != 1 { "s" } } }
            div data-refresh="/fragments/channels" { (table) }
        },
    ))
}

pub async fn channels_fragment(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
) -> HttpResponse {
    if let Err(answer) = auth::session(&req, &state, &sessions) {
        return answer;
    }
    html_page(channels_table(&state).await)
}

pub async fn dead_letters(req: HttpRequest, state: web::Data<State>, sessions: web::Data<Sessions>) -> HttpResponse {
    let session = match auth::session(&req, &state, &sessions) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let csrf = sessions.csrf(&session);
    let letters = match state.store.dead_letters().await {
        Ok(l) => l,
        Err(e) => return HttpResponse::ServiceUnavailable().body(format!("the store cannot be read: {e}")),
    };
    let when =
        |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
    html_page(layout(
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
    ))
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
) -> HttpResponse {
    if let Err(answer) = auth::checked(&req, &state, &sessions, field(&form, "csrf")) {
        return answer;
    }
    let ids: Vec<i64> = if field(&form, "which") == "all" {
        state.store.dead_letters().await.unwrap_or_default().iter().map(|l| l.id).collect()
    } else {
        form.iter().filter(|(k, _)| k == "id").filter_map(|(_, v)| v.parse().ok()).collect()
    };
    for id in ids {
        match state.store.requeue(id).await {
            Ok(()) => tracing::info!(id, "Dead letter replayed from the console."),
            Err(e) => return HttpResponse::Conflict().body(format!("dead letter {id}: {e}")),
        }
    }
    HttpResponse::SeeOther().insert_header((header::LOCATION, "/dead-letters")).finish()
}

pub async fn purge(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    if let Err(answer) = auth::checked(&req, &state, &sessions, field(&form, "csrf")) {
        return answer;
    }
    match state.store.purge(None).await {
        Ok(n) => tracing::info!(purged = n, "Dead letters purged from the console."),
        Err(e) => return HttpResponse::ServiceUnavailable().body(format!("the store failed: {e}")),
    }
    HttpResponse::SeeOther().insert_header((header::LOCATION, "/dead-letters")).finish()
}
