//! A call's page: what the relay remembers of the call (caller, agent, first and last event,
//! utterances, how it ended) and its conversation: each event in order (its start, every
//! utterance with sender, time and text, the summary, a time-out), each with where it was posted
//! and with what outcome. Kept while the call is remembered (`calls.forget_after`), delivered or
//! not. maud escapes every value, so caller text shows as text.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde_json::Value;

use super::auth::{self, Sessions};
use super::frame::{html_page, layout};
use crate::app::State;
use crate::store::{PostStatus, RecentEvent, Remembered};

/// Most events a call's page shows.
const SHOWN: usize = 10_000;

fn when(ms: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format(format).to_string()).unwrap_or_default()
}

/// What the relay remembers of the call.
fn facts(call: &Remembered) -> Markup {
    let state = match (call.ended_at_ms, call.timed_out_at_ms) {
        (Some(at), _) => format!("ended {}", when(at, "%Y-%m-%d %H:%M:%S UTC")),
        (None, Some(at)) => format!("no summary received; timed out {}", when(at, "%Y-%m-%d %H:%M:%S UTC")),
        (None, None) => "live".to_owned(),
    };
    html! {
        dl.call-facts {
            dt { "Caller" } dd { (call.user_name.as_deref().unwrap_or("unknown")) }
            dt { "Agent" } dd { (call.agent_id.as_deref().unwrap_or("unknown")) }
            dt { "First event" } dd { (when(call.first_at_ms, "%Y-%m-%d %H:%M:%S UTC")) }
            dt { "Last event" } dd { (when(call.last_at_ms, "%Y-%m-%d %H:%M:%S UTC")) }
            dt { "Utterances" } dd { (call.utterances) }
            dt { "State" } dd { (state) }
        }
    }
}

/// Where an event was posted, and how it went.
fn posts(posts: &[PostStatus]) -> Markup {
    html! {
        div.posts {
            @if posts.is_empty() { span.none { "routed to no channel" } }
            @for p in posts {
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

/// A text field of the event, if it has one.
fn text<'a>(event: &'a Value, pointer: &str) -> Option<&'a str> {
    event.pointer(pointer).and_then(Value::as_str)
}

/// One event of the conversation.
fn entry(e: &RecentEvent) -> Markup {
    let event: Value = e.shown.as_deref().and_then(|j| serde_json::from_str(j).ok()).unwrap_or(Value::Null);
    let caller = text(&event, "/user_name").unwrap_or("Caller");
    let accepted = when(e.accepted_at_ms, "%H:%M:%S");
    let (class, who, said): (&str, String, Markup) = match e.event_type.as_str() {
        "message" => {
            let agent = event.pointer("/message/is_agent").and_then(Value::as_bool).unwrap_or(false);
            let who = if agent { "🤖 Agent".to_owned() } else { format!("👤 {caller}") };
            let words = text(&event, "/message/message").unwrap_or("");
            (if agent { "utterance agent" } else { "utterance user" }, who, html! { p.words { (words) } })
        }
        "call_ended" => {
            let topic = text(&event, "/evaluation/topic").unwrap_or("Call summary");
            let sentiment = text(&event, "/evaluation/user_sentiment").unwrap_or("not rated");
            let minutes = event.pointer("/evaluation/duration_minutes").and_then(Value::as_f64);
            let count = event.pointer("/messages_count").and_then(Value::as_u64).unwrap_or(0);
            let body = html! {
                p.words { strong { (topic) } }
                p { "Sentiment: " (sentiment)
                    @if let Some(m) = minutes { " · " (format!("{m:.1}")) " min" }
                    " · transcript of " (count) " utterance" @if count != 1 { "s" } }
            };
            ("summary", "📋 Summary (call_ended)".to_owned(), body)
        }
        "call_started" => {
            let agent = text(&event, "/agent_id").map(|a| format!(" with agent {a}")).unwrap_or_default();
            ("lifecycle", "📞 Call started".to_owned(), html! { p { (caller) (agent) } })
        }
        "call_timed_out" => {
            let body = html! { p { "No event for " (calls_silence(&event)) "; no call_ended came." } };
            ("lifecycle", "⏱️ Ended; no summary received".to_owned(), body)
        }
        other => ("lifecycle", other.to_owned(), html! {}),
    };
    let spoken = text(&event, "/message/sent_at").and_then(crate::event::parse_time);
    html! {
        li class=(class) {
            div.head {
                span.who { (who) }
                span.time {
                    @if let Some(t) = spoken { "said " (t.format("%H:%M:%S")) " · " }
                    "accepted " (accepted)
                }
            }
            (said)
            (posts(&e.posts))
        }
    }
}

fn calls_silence(event: &Value) -> String {
    let minutes = event.pointer("/call/silent_minutes").and_then(Value::as_f64).unwrap_or(0.0);
    humantime::format_duration(std::time::Duration::from_secs((minutes * 60.0).round() as u64)).to_string()
}

/// The page's live part: the facts and the conversation.
async fn parts(state: &State, call_id: &str) -> Result<Markup, String> {
    let events = state.store.recent(Some(call_id), SHOWN).await.map_err(|e| e.to_string())?;
    let remembered = state.store.call(call_id).await.map_err(|e| e.to_string())?;
    Ok(html! {
        @if let Some(call) = &remembered { (facts(call)) }
        @if events.is_empty() {
            p { "No events of this call are kept (" code { "calls.forget_after" } ", " code { "admin.keep_events" } ")." }
        } @else {
            ol.conversation { @for e in &events { (entry(e)) } }
        }
    })
}

pub async fn page(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
    call_id: web::Path<String>,
) -> actix_web::Result<HttpResponse> {
    let session = auth::session(&req, &state, &sessions)?;
    let parts = match parts(&state, &call_id).await {
        Ok(p) => p,
        Err(e) => return Ok(HttpResponse::ServiceUnavailable().body(format!("the store cannot be read: {e}"))),
    };
    let fragment =
        format!("/fragments/calls/{}", url::form_urlencoded::byte_serialize(call_id.as_bytes()).collect::<String>());
    Ok(html_page(layout(
        &format!("Call {call_id}"),
        auth::logout_csrf(&state, &sessions, &session).as_deref(),
        html! { div data-refresh=(fragment) { (parts) } },
    )))
}

pub async fn fragment(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
    call_id: web::Path<String>,
) -> actix_web::Result<HttpResponse> {
    auth::session(&req, &state, &sessions)?;
    Ok(html_page(parts(&state, &call_id).await.unwrap_or_else(|e| html! { p.error { (e) } })))
}
