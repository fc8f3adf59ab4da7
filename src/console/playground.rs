//! The template playground: pick a channel and an event (a built-in sample, or pasted JSON), edit
//! the template the channel draws it with, and see what would be posted, step by step from the
//! delivery plan the lane follows ([`crate::plan`]): a thread's parent or name, the exact bodies
//! (after escaping, `allowed_mentions`, limits and splitting), the parent's edit; what the limits
//! changed, errors with the template's line, and each post drawn as the platform would. The
//! script previews as you type; without it, "Preview" does the same.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::auth::{self, Sessions};
use super::frame::{html_page, layout};

use crate::app::State;
use crate::event::{self, Incoming};
use crate::plan::{plan, usual_call, Plan, Start, Where};

/// What the form carries.
#[derive(Debug, Default, Deserialize)]
pub struct Form {
    #[serde(default)]
    pub channel: String,
    /// A sample's index.
    #[serde(default)]
    pub sample: String,
    /// Pasted JSON (wins over the sample when not blank).
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub csrf: String,
}

/// The event of a form: the pasted JSON, else the chosen built-in sample, else the first.
pub fn event_text(form: &Form) -> String {
    if let Some(text) = form.event.as_ref().filter(|t| !t.trim().is_empty()) {
        return text.clone();
    }
    let samples = crate::samples::all();
    let i = form.sample.parse::<usize>().unwrap_or(0).min(samples.len() - 1);
    serde_json::to_string_pretty(&samples[i].body).expect("JSON values serialise")
}

/// The event of a form, as the relay would take it; or the error to show instead.
fn event_of(form: &Form) -> Result<crate::event::Event, Markup> {
    let value: Value = serde_json::from_str(&event_text(form))
        .map_err(|e| html! { p.error { "The event is not JSON: " (e.to_string()) } })?;
    match event::from_value(&value, chrono::Utc::now()) {
        Ok(Incoming::Event(e)) => Ok(*e),
        Ok(_) => Err(html! { p.error { "The relay ignores this event (an unknown event type)." } }),
        Err(e) => Err(html! { p.error { "The relay would refuse this event: " (e.to_string()) } }),
    }
}

/// The template the playground edits for a channel and event: the one the plan draws the
/// posts with (a live-transcript channel's `transcript` for a `message`).
fn kind_of(config: &crate::setup::Config, channel: &str, event: &crate::event::Event) -> &'static str {
    let Some(c) = config.channels.get(channel) else { return event.event_type.as_str() };
    let call = usual_call(config, channel, event.event_type);
    plan(&config.renderer, c, event.event_type, &crate::intake::context(event), &call)
        .map_or(event.event_type.as_str(), |p| p.kind)
}

/// What `form` would post, by the delivery plan the lane follows (with the edited template): the
/// configuration, the channel's name and the plan; or the error to show instead.
fn rendered(state: &State, form: &Form) -> Result<(std::sync::Arc<crate::setup::Config>, String, Plan), Markup> {
    let config = state.snapshot.load().config.clone();
    let Some(channel) = config.channels.get(&form.channel) else {
        return Err(html! { p.error { "No channel named “" (form.channel) "”." } });
    };
    let event = event_of(form)?;
    let kind = kind_of(&config, &channel.name, &event);
    let renderer = match &form.template {
        Some(source) => config.renderer.with_template(channel, kind, source).map_err(|e| error(&e))?,
        None => config.renderer.clone(),
    };
    let call = usual_call(&config, &channel.name, event.event_type);
    let context = crate::intake::context(&event);
    let planned = plan(&renderer, channel, event.event_type, &context, &call).map_err(|e| error(&e))?;
    let name = channel.name.clone();
    Ok((config, name, planned))
}

/// The preview of `form`, step by step as the lane would send it: the thread's start, the posts
/// (bodies, notes, look-alikes), the parent's edit; errors with the template's line.
fn render(state: &State, form: &Form) -> Markup {
    let (config, name, planned) = match rendered(state, form) {
        Ok(r) => r,
        Err(shown) => return shown,
    };
    let channel = &config.channels[&name];
    let look = |body: &str| {
        let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        html! {
            (crate::platforms::rules(channel.platform).preview(channel, &value))
            details { summary { "Exact body (" (body.len()) " bytes)" } pre { (serde_json::to_string_pretty(&value).unwrap_or_default()) } }
        }
    };
    let total = planned.posts.len();
    let into = match (&planned.start, &planned.place) {
        (_, Where::Thread(_)) => " in the call's thread",
        (Some(Ok(_)), _) => " in the call's new thread",
        (_, Where::FirstPostIsParent) => " (the first is the thread's parent; the rest reply to it)",
        _ => "",
    };
    html! {
        @match &planned.start {
            Some(Ok(Start::Parent(parent))) => section.post.step {
                h3 { "First, the call's thread parent (" code { "call_started" } ")" }
                (look(parent))
            },
            Some(Ok(Start::Named(thread))) => section.post.step {
                h3 { "The first post starts the call's thread “" (thread) "”" }
            },
            Some(Err(e)) => (error(e)),
            None => {},
        }
        @if planned.transcript {
            p.hint { "This utterance joins the call's live transcript message (part " (planned.part) "), edited as utterances arrive." }
        }
        @if !planned.notes.is_empty() {
            ul.notes { @for n in &planned.notes { li { (n) } } }
        }
        @for (i, body) in planned.posts.iter().enumerate() {
            section.post {
                h3 { "Post " (i + 1) " of " (total) " to " (channel.name) (into) }
                (look(body))
            }
        }
        @match &planned.edit_parent {
            Some(Ok(parent)) => section.post.step {
                h3 { "Then the thread's parent is edited to show the outcome" }
                (look(parent))
            },
            Some(Err(e)) => (error(e)),
            None => {},
        }
    }
}

/// "Send test": posts what the preview shows to the real channel, as `callrelay send-test` does
/// (directly, outside the channel's queue), and shows the platform's answers.
/// (The script asks with `?fragment=1` and shows the answers in place; without it, a page.)
pub async fn send(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
    form: web::Form<Form>,
) -> actix_web::Result<HttpResponse> {
    let session = auth::checked(&req, &state, &sessions, &form.csrf)?;
    let fragment = req.query_string().contains("fragment=1");
    let (config, name, planned) = match rendered(&state, &form) {
        Ok(r) => r,
        Err(shown) => return Ok(html_page(shown)),
    };
    let channel = &config.channels[&name];
    let client = crate::platforms::http_client(config.delivery.request_timeout);
    let Some(sink) = crate::platforms::sink_for(channel, &client) else {
        return Ok(html_page(
            html! { p.error { "Channel “" (name) "” is disabled: its webhook URL variable is unset." } },
        ));
    };
    // The parent (if the plan starts with one) and the posts, each straight into the channel:
    // a test send starts no thread.
    let parent = match &planned.start {
        Some(Ok(Start::Parent(parent))) => Some(parent),
        _ => None,
    };
    let mut answers = Vec::new();
    for post in parent.into_iter().chain(&planned.posts) {
        let posted = sink.post(post, &crate::platforms::Place::Channel).await;
        tracing::info!(channel = %name, answer = %posted.answer, "Console test send.");
        answers.push((posted.outcome == crate::platforms::Outcome::Delivered, posted.answer));
    }
    let list = html! {
        ul.sent {
            @for (i, (ok, answer)) in answers.iter().enumerate() {
                li class=(if *ok { "ok" } else { "error" }) { "Post " (i + 1) " to " (name) ": " (answer) }
            }
        }
    };
    if fragment {
        return Ok(html_page(list));
    }
    Ok(html_page(layout(
        "Test sent",
        auth::logout_csrf(&state, &sessions, &session).as_deref(),
        html! { (list) p { a href={ "/playground?channel=" (name) } { "Back to the playground" } } },
    )))
}

fn error(e: &crate::render::RenderError) -> Markup {
    html! {
        p.error {
            strong { "Template error" @if let Some(line) = e.line { " on line " (line) } ": " }
            (e.message)
        }
    }
}

async fn page_with(state: &State, sessions: &Sessions, session: &str, form: Form) -> HttpResponse {
    let config = state.snapshot.load().config.clone();
    let mut form = form;
    let last = state.last_events.list();
    // One of the last accepted events chosen (`r<seq>`): its JSON, unless the form carries one.
    if let Some(seq) = form.sample.strip_prefix('r').and_then(|n| n.parse::<u64>().ok()) {
        if form.event.as_deref().is_none_or(|e| e.trim().is_empty()) {
            form.event = last
                .iter()
                .find(|e| e.seq == seq)
                .and_then(|e| serde_json::from_str::<Value>(&e.event).ok())
                .map(|v| serde_json::to_string_pretty(&v).expect("JSON values serialise"));
        }
    }
    if !config.channels.contains_key(&form.channel) {
        form.channel = config.channels.keys().next().cloned().unwrap_or_default();
    }
    let event = event_text(&form);
    let kind = match event_of(&form) {
        Ok(e) => kind_of(&config, &form.channel, &e).to_owned(),
        Err(_) => "message".into(),
    };
    let template = form
        .template
        .clone()
        .unwrap_or_else(|| config.renderer.source_for(&form.channel, &kind).unwrap_or("").to_owned());
    let file = config.renderer.template_for(&form.channel, &kind).unwrap_or("?").to_owned();
    let csrf = sessions.csrf(session);
    let preview =
        render(state, &Form { template: Some(template.clone()), event: Some(event.clone()), ..form_copy(&form) });
    let samples = crate::samples::all();
    html_page(layout(
        "Template playground",
        auth::logout_csrf(state, sessions, session).as_deref(),
        html! {
            form #playground method="post" action="/playground" data-preview="/playground/preview" {
                input type="hidden" name="csrf" value=(csrf);
                div.pick {
                    label { "Channel " select name="channel" {
                        @for name in config.channels.keys() { option value=(name) selected[*name == form.channel] { (name) } }
                    } }
                    label { "Event " select name="sample" {
                        optgroup label="Built-in samples" {
                            @for (i, s) in samples.iter().enumerate() { option value=(i) selected[form.sample == i.to_string()] { (s.name) } }
                        }
                        @if !last.is_empty() {
                            optgroup label="Last events this relay accepted" {
                                @for e in &last {
                                    @let value = format!("r{}", e.seq);
                                    option value=(value) selected[form.sample == value] { (e.event_type) " · call " (e.call_id) " · #" (e.seq) }
                                }
                            }
                        }
                    } }
                    a.button href="/playground" { "Start over" }
                }
                div.columns {
                    div {
                        label { "Template " code { (file) } " (Handlebars)"
                            textarea name="template" rows="24" spellcheck="false" { (template) } }
                        label { "Event (JSON, as Beyond Presence posts it)"
                            textarea name="event" rows="12" spellcheck="false" { (event) } }
                        button type="submit" { "Preview" }
                        " "
                        button type="submit" formaction="/playground/send" { "Send test to " (form.channel) }
                        " "
                        @if config.admin.allow_template_edits {
                            button type="submit" formaction="/playground/save" { "Save " (file) }
                        } @else {
                            button type="submit" formaction="/playground/save" { "Download the template" }
                        }
                        @if !config.admin.allow_template_edits {
                            p.hint { "Saving from the console is off (" code { "admin.allow_template_edits" } "): download the template and put it at "
                                code { (file.trim_start_matches("built-in:")) } " in the templates directory; live reload picks it up." }
                        }
                    }
                    div {
                        div #sent aria-live="polite" {}
                        div #preview aria-live="polite" { (preview) }
                    }
                }
            }
        },
    ))
}

fn form_copy(f: &Form) -> Form {
    Form {
        channel: f.channel.clone(),
        sample: f.sample.clone(),
        event: f.event.clone(),
        template: f.template.clone(),
        csrf: String::new(),
    }
}

pub async fn page(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
    query: web::Query<Form>,
) -> actix_web::Result<HttpResponse> {
    let session = auth::session(&req, &state, &sessions)?;
    Ok(page_with(&state, &sessions, &session, query.into_inner()).await)
}

/// The form posted without the script: the whole page again, with its preview. A changed sample
/// or channel starts from that sample and channel's template.
pub async fn page_posted(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
    form: web::Form<Form>,
) -> actix_web::Result<HttpResponse> {
    let session = auth::checked(&req, &state, &sessions, &form.csrf)?;
    Ok(page_with(&state, &sessions, &session, form.into_inner()).await)
}

/// The preview alone, for the script.
pub async fn preview(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
    form: web::Form<Form>,
) -> actix_web::Result<HttpResponse> {
    auth::checked(&req, &state, &sessions, &form.csrf)?;
    Ok(html_page(render(&state, &form)))
}

/// "Save": the edited template, once it renders every built-in sample of its event type (and the
/// event in the form), is written over the channel's template file (atomically: a temporary
/// file, then a rename), and live reload puts it in force. Without `admin.allow_template_edits`
/// the file is offered for download instead. The file is the one the configuration names for the
/// channel and event type; nothing in the form chooses a path.
pub async fn save(
    req: HttpRequest,
    state: web::Data<State>,
    sessions: web::Data<Sessions>,
    form: web::Form<Form>,
) -> actix_web::Result<HttpResponse> {
    let session = auth::checked(&req, &state, &sessions, &form.csrf)?;
    let (config, name, _) = match rendered(&state, &form) {
        Ok(r) => r,
        Err(shown) => return Ok(saved_page(&state, &sessions, &session, shown)),
    };
    let Some(source) = form.template.clone() else {
        return Ok(HttpResponse::BadRequest().body("no template in the form"));
    };
    let event = event_of(&form).map_err(|_| actix_web::error::ErrorBadRequest("the event is not valid"))?;
    let kind = kind_of(&config, &name, &event);
    // Every built-in sample of this event type must render too, as `check` would insist.
    let event_type = event.event_type.as_str();
    for sample in crate::samples::all().into_iter().filter(|s| s.body["event_type"] == event_type) {
        let trial = Form { event: Some(sample.body.to_string()), ..form_copy(&form) };
        if let Err(shown) = rendered(&state, &trial) {
            return Ok(saved_page(
                &state,
                &sessions,
                &session,
                html! { p { "Not saved: the sample “" (sample.name) "” fails:" } (shown) },
            ));
        }
    }
    let relative = config.renderer.template_for(&name, kind).unwrap_or("?").trim_start_matches("built-in:").to_owned();
    if !config.admin.allow_template_edits {
        let file = relative.rsplit('/').next().unwrap_or("template.json.hbs").to_owned();
        return Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .insert_header(("Content-Disposition", format!("attachment; filename=\"{file}\"")))
            .body(source));
    }
    let path = config.templates_dir.join(&relative);
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(path.with_extension("hbs.saving"), &source))
        .and_then(|()| std::fs::rename(path.with_extension("hbs.saving"), &path));
    let shown = match written {
        Ok(()) => {
            tracing::info!(file = %path.display(), "Template saved from the console; live reload puts it in force.");
            html! { p.ok { "Saved " code { (relative) } ". Live reload puts it in force within a second (the log says “Reloaded the configuration”)." } }
        }
        Err(e) => html! { p.error { "Could not write " code { (path.display().to_string()) } ": " (e.to_string()) } },
    };
    Ok(saved_page(&state, &sessions, &session, shown))
}

fn saved_page(state: &State, sessions: &Sessions, session: &str, shown: Markup) -> HttpResponse {
    html_page(layout(
        "Save the template",
        auth::logout_csrf(state, sessions, session).as_deref(),
        html! { (shown) p { a href="/playground" { "Back to the playground" } } },
    ))
}
