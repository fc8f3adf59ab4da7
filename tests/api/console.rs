//! The web console over HTTP, on the real server: security headers, login and CSRF, the
//! channels overview, the playground (its exact body is what the relay really posts; errors carry
//! the template's line; hostile text stays text) and dead-letter replay.

use std::time::Duration;

use reqwest::StatusCode;
use wiremock::ResponseTemplate;

use crate::helpers::*;

fn console(app: &TestApp) -> String {
    app.console.clone().expect("the console runs")
}

/// A client that keeps cookies and does not follow redirects (to see them).
fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn csrf_of(page: &str) -> String {
    let re = regex::Regex::new(r#"name="csrf" value="([0-9a-f]{64})""#).unwrap();
    re.captures(page).expect("a CSRF field")[1].to_owned()
}

#[tokio::test]
async fn the_console_serves_on_loopback_with_a_strict_policy_and_never_shows_secrets() {
    let app = spawn_app().await;
    let answer = reqwest::get(format!("{}/", console(&app))).await.unwrap();
    assert_eq!(answer.status(), 200);
    let headers = answer.headers().clone();
    assert_eq!(headers["content-security-policy"], callrelay::console::CSP);
    assert!(callrelay::console::CSP.contains("script-src 'self'") && !callrelay::console::CSP.contains("unsafe"));
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let page = answer.text().await.unwrap();
    assert!(page.contains("<td>live</td>") && page.contains("<td>summaries</td>"), "{page}");
    assert!(!page.contains("slacksecrettoken") && !page.contains(&app.slack.uri()), "no webhook URL shown");
    // Not on the webhook port.
    let webhook_port = reqwest::get(format!("{}/playground", app.address)).await.unwrap();
    assert_eq!(webhook_port.status(), 404);
    // A page whose name was re-pointed at 127.0.0.1 (DNS rebinding) is not served.
    let rebound = reqwest::Client::new()
        .get(format!("{}/", console(&app)))
        .header("Host", "evil.example:9090")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    let by_name = reqwest::Client::new()
        .get(format!("{}/", console(&app)))
        .header("Host", "localhost:9090")
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.status(), 200);
}

#[tokio::test]
async fn with_a_token_every_page_needs_a_login_and_every_form_a_csrf_token() {
    std::env::set_var("CALLRELAY_TEST_CONSOLE_TOKEN", "console-S3CRET-token");
    let app = spawn_with(
        &DEFAULT_TOML.replace("[server]", "[admin]\ntoken = \"${CALLRELAY_TEST_CONSOLE_TOKEN}\"\n\n[server]"),
    )
    .await;
    let base = console(&app);
    let client = browser();
    let first = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert_eq!(first.headers()["location"], "/login");
    let refused = client.post(format!("{base}/dead-letters/purge")).form(&[("csrf", "x")]).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "no session, no action");
    let wrong = client.post(format!("{base}/login")).form(&[("token", "guess")]).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = client.post(format!("{base}/login")).form(&[("token", "console-S3CRET-token")]).send().await.unwrap();
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    let cookie = right.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let page = client.get(format!("{base}/dead-letters")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("No dead letters"), "{page}");
    let csrf = csrf_of(&page);
    let forged =
        client.post(format!("{base}/dead-letters/purge")).form(&[("csrf", "0".repeat(64))]).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "a forged form is refused");
    let ok = client.post(format!("{base}/dead-letters/purge")).form(&[("csrf", &csrf)]).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let out = client.post(format!("{base}/logout")).form(&[("csrf", &csrf)]).send().await.unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(client.get(format!("{base}/")).send().await.unwrap().status(), StatusCode::SEE_OTHER, "logged out");
}

#[test]
fn a_console_reachable_from_other_machines_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, "[admin]\nlisten = \"0.0.0.0:9090\"\n").unwrap();
    let out = bin().args(["check", "--config"]).arg(&file).env_remove("CALLRELAY__ADMIN__LISTEN").output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("relay.toml:2: key `admin.listen`") && said.contains("set `admin.token`"), "{said}");
}

async fn preview(app: &TestApp, fields: &[(&str, &str)]) -> String {
    let client = browser();
    let page = client.get(format!("{}/playground", console(app))).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_of(&page);
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
    form.extend_from_slice(fields);
    let answer = client.post(format!("{}/playground/preview", console(app))).form(&form).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    answer.text().await.unwrap()
}

/// The exact body a preview shows (its first post), as JSON.
fn exact_body(fragment: &str) -> serde_json::Value {
    let start = fragment.find("<pre>").expect("an exact body") + 5;
    let end = start + fragment[start..].find("</pre>").unwrap();
    let text =
        fragment[start..end].replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_playground_shows_exactly_what_the_relay_posts_and_draws_it_as_slack_does() {
    let app = spawn_app().await;
    let hostile = "<img src=x onerror=alert(1)> <script>alert(1)</script> @everyone *bold*";
    let event = message("call-7", "user", hostile);
    let template = callrelay::render::default_template(callrelay::platforms::slack::SLACK, "message");
    let source = std::fs::read_to_string(templates_dir().join(template)).unwrap();
    let edited = source.replacen("\"blocks\"", "\"text\": \"edited in the playground\", \"blocks\"", 1);
    assert_ne!(edited, source);
    let fragment = preview(&app, &[("channel", "live"), ("event", &event.to_string()), ("template", &edited)]).await;
    // Hostile text is text: escaped in the page, never markup.
    assert!(!fragment.contains("<img") && !fragment.contains("<script"), "{fragment}");
    assert!(fragment.contains("&lt;img src=x onerror=alert(1)&gt;"), "{fragment}");
    assert!(fragment.contains("class=\"slack\""), "a Slack look-alike");

    // The preview's exact body is what the relay posts with that template.
    let shown = exact_body(&fragment);
    assert_eq!(shown["text"], "edited in the playground");
    let unedited = exact_body(&preview(&app, &[("channel", "live"), ("event", &event.to_string())]).await);
    assert_eq!(app.post_event(&event).await.status(), 200);
    wait_until("the post", Duration::from_secs(10), async || !bodies(&app.slack).await.is_empty()).await;
    assert_eq!(bodies(&app.slack).await[0], unedited, "the playground renders through the real path");
}

#[tokio::test]
async fn a_broken_template_is_reported_with_its_line_and_discord_is_drawn_with_embeds() {
    let app = spawn_app().await;
    let fragment = preview(
        &app,
        &[
            ("channel", "live"),
            ("event", &message("c", "user", "hi").to_string()),
            ("template", "{\n\"text\": \"{{no_such_field}}\"\n}"),
        ],
    )
    .await;
    assert!(fragment.contains("Template error on line 2") && fragment.contains("no_such_field"), "{fragment}");
    let unparsable = preview(&app, &[("channel", "live"), ("template", "{\n\"text\": \"{{\"\n}")]).await;
    assert!(unparsable.contains("Template error on line"), "{unparsable}");
    let fragment =
        preview(&app, &[("channel", "summaries"), ("event", &call_ended("c", "negative").to_string())]).await;
    assert!(fragment.contains("class=\"discord\"") && fragment.contains("class=\"embed\""), "{fragment}");
    let body = exact_body(&fragment);
    assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]), "the exact body, mention-safe");
    let pasted = preview(&app, &[("channel", "live"), ("event", "{not json")]).await;
    assert!(pasted.contains("The event is not JSON"), "{pasted}");
}

#[tokio::test]
async fn a_dead_letter_is_listed_and_replayed_from_the_console() {
    let app = spawn_app().await;
    slack_answers(&app, ResponseTemplate::new(400).set_body_string("invalid_blocks"), Some(1)).await;
    assert_eq!(app.post_event(&message("call-9", "user", "try again")).await.status(), 200);
    let client = browser();
    let base = console(&app);
    let mut page = String::new();
    wait_until("the dead letter", Duration::from_secs(10), async || {
        page = client.get(format!("{base}/dead-letters")).send().await.unwrap().text().await.unwrap();
        page.contains("invalid_blocks")
    })
    .await;
    assert!(page.contains("call-9") && page.contains("try again"), "{page}");
    let id = regex::Regex::new(r#"name="id" value="(\d+)""#).unwrap().captures(&page).unwrap()[1].to_owned();
    let replayed = client
        .post(format!("{base}/dead-letters/replay"))
        .form(&[("csrf", csrf_of(&page).as_str()), ("id", &id), ("which", "selected")])
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), StatusCode::SEE_OTHER);
    wait_until("the replayed post", Duration::from_secs(10), async || {
        slack_messages(&bodies(&app.slack).await).contains(&"try again".to_owned())
    })
    .await;
    let after = client.get(format!("{base}/dead-letters")).send().await.unwrap().text().await.unwrap();
    assert!(after.contains("No dead letters"), "{after}");
}

#[tokio::test]
async fn the_route_tester_shows_each_test_held_or_not_and_the_channels_reached() {
    let toml = DEFAULT_TOML.replace(
        "[[routes]]\nname = \"summaries\"",
        "[[routes]]\nname = \"urgent\"\nevents = [\"call_ended\"]\nchannels = [\"live\"]\nstop = true\n[routes.match]\n\"evaluation.user_sentiment\" = \"negative\"\n\n[[routes]]\nname = \"summaries\"",
    );
    let app = spawn_with(&toml).await;
    let client = browser();
    let base = console(&app);
    let page = client.get(format!("{base}/routes")).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_of(&page);
    let test = async |event: &serde_json::Value| {
        let form = [("csrf", csrf.as_str()), ("event", &event.to_string())];
        client.post(format!("{base}/routes")).form(&form).send().await.unwrap().text().await.unwrap()
    };
    let negative = test(&call_ended("c", "negative")).await;
    assert!(negative.contains("This event reaches: <strong>live</strong>"), "{negative}");
    assert!(negative.contains("`evaluation.user_sentiment` is &quot;negative&quot;"), "{negative}");
    assert!(negative.contains("urgent <span class=\"state sending\">matches"), "{negative}");
    assert!(negative.contains("summaries <span class=\"state\">not evaluated"), "stop ends evaluation: {negative}");
    let positive = test(&call_ended("c", "positive")).await;
    assert!(positive.contains("urgent <span class=\"state broken\">does not match"), "{positive}");
    assert!(positive.contains("<code>&quot;positive&quot;</code></td><td>no</td>"), "{positive}");
    assert!(positive.contains("This event reaches: <strong>summaries</strong>"), "{positive}");
    let message = test(&message("c", "user", "hi")).await;
    assert!(message.contains("event type is one of: call_ended</td><td><code>message</code></td><td>no"), "{message}");
}

#[tokio::test]
async fn send_test_posts_what_the_preview_shows_to_the_real_channel() {
    let app = spawn_app().await;
    let client = browser();
    let base = console(&app);
    let page = client.get(format!("{base}/playground")).send().await.unwrap().text().await.unwrap();
    let form = [
        ("csrf", csrf_of(&page)),
        ("channel", "live".into()),
        ("sample", "0".into()),
        ("template", "{\"text\": \"test send: {{message.message}}\"}".into()),
    ];
    let answer = client.post(format!("{base}/playground/send?fragment=1")).form(&form).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let shown = answer.text().await.unwrap();
    assert!(shown.contains("class=\"ok\"") && shown.contains("Post 1 to live: 200"), "{shown}");
    let posted = bodies(&app.slack).await;
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0]["text"], "test send: Hi, I need help with my order.");
    let forged = client.post(format!("{base}/playground/send")).form(&[("channel", "live")]).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(bodies(&app.slack).await.len(), 1, "nothing sent without the CSRF token");
}

#[tokio::test]
async fn deliveries_show_recent_events_per_call_with_each_posts_status_and_the_last_hours_counts() {
    let app = spawn_app().await;
    slack_answers(&app, ResponseTemplate::new(500).set_body_string("boom"), Some(1)).await;
    for text in ["first", "second"] {
        assert_eq!(app.post_event(&message("call-42", "user", text)).await.status(), 200);
    }
    assert_eq!(app.post_event(&call_ended("call-42", "negative")).await.status(), 200);
    assert_eq!(app.post_event(&message("call-43", "user", "elsewhere")).await.status(), 200);
    app.dispatcher.idle(Duration::from_secs(20)).await;
    let base = console(&app);
    let overview = reqwest::get(format!("{base}/")).await.unwrap().text().await.unwrap();
    assert!(
        overview.contains("Recent events") && overview.contains(r#"<a href="/calls/call-42">call-42</a>"#),
        "{overview}"
    );
    assert!(overview.contains("delivered, 0 failing in the last hour"), "the chart's legend: {overview}");
    let row = |name: &str| {
        let start = overview.find(&format!("<td>{name}</td>")).unwrap();
        overview[start..start + overview[start..].find("</tr>").unwrap()].to_owned()
    };
    assert!(row("live").contains("<td class=\"num\">3</td><td class=\"num\">0</td>"), "3 delivered: {}", row("live"));
    assert!(row("summaries").contains("<td class=\"num\">1</td><td class=\"num\">0</td>"), "{}", row("summaries"));

    let call = reqwest::get(format!("{base}/calls/call-42")).await.unwrap().text().await.unwrap();
    let at = |what: &str| call.find(what).unwrap_or_else(|| panic!("no {what:?} in {call}"));
    assert!(
        at("📞 Call started") < at("first") && at("first") < at("second") && at("second") < at("📋 Summary"),
        "the call's events in order: {call}"
    );
    assert!(
        call.contains("<p class=\"words\">first</p>") && call.contains("👤 John Doe"),
        "each utterance, its sender: {call}"
    );
    assert!(call.contains("said 10:30:00"), "when it was said: {call}");
    assert!(
        call.contains("<strong>Account Support</strong>") && call.contains("Sentiment: negative"),
        "the summary: {call}"
    );
    assert!(!call.contains("call-43") && !call.contains("elsewhere"), "only this call");
    assert!(
        call.contains("<dt>Agent</dt><dd>agent_456</dd>") && call.contains("<dt>Utterances</dt><dd>2</dd>"),
        "{call}"
    );
    assert!(call.contains("<dd>ended "), "{call}");
    assert!(
        call.contains("live: <span class=\"state delivered\">delivered</span> after 1 failed attempt</div>"),
        "{call}"
    );
    assert!(call.contains("summaries: <span class=\"state delivered\">delivered</span>"), "{call}");
    let missing = reqwest::get(format!("{base}/calls/%3Cscript%3E")).await.unwrap().text().await.unwrap();
    assert!(missing.contains("Call &lt;script&gt;") && missing.contains("No events of this call"), "{missing}");
}

#[tokio::test]
async fn keep_events_zero_keeps_no_recent_events() {
    let app = spawn_with(&DEFAULT_TOML.replace("[server]", "[admin]\nkeep_events = \"0s\"\n\n[server]")).await;
    assert_eq!(app.post_event(&message("call-0", "user", "not kept")).await.status(), 200);
    app.dispatcher.idle(Duration::from_secs(10)).await;
    assert_eq!(slack_messages(&bodies(&app.slack).await), ["not kept"], "delivered all the same");
    let overview = reqwest::get(format!("{}/", console(&app))).await.unwrap().text().await.unwrap();
    assert!(overview.contains("None yet.") && !overview.contains("call-0"), "{overview}");
}

#[tokio::test]
async fn save_writes_the_template_when_allowed_and_live_reload_puts_it_in_force() {
    let (app, dir) = spawn_with_own_templates().await;
    let client = browser();
    let base = console(&app);
    let page = client.get(format!("{base}/playground")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Download the template"), "saving is off by default");
    let edited = "{\"text\": \"saved: {{message.message}}\"}";
    let form =
        [("csrf", csrf_of(&page)), ("channel", "live".into()), ("sample", "0".into()), ("template", edited.into())];
    let download = client.post(format!("{base}/playground/save")).form(&form).send().await.unwrap();
    assert!(download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment; filename=\"message.json.hbs\""));
    assert_eq!(download.text().await.unwrap(), edited);
    let file = dir.join("slack/message.json.hbs");
    assert_ne!(std::fs::read_to_string(&file).unwrap(), edited, "not written without admin.allow_template_edits");

    // Allowed: the same form writes the file, and the relay reloads it.
    let config = app.config_file();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("[server]", "[admin]\nallow_template_edits = true\n\n[server]")).unwrap();
    wait_for_reloads(&app, "reloads", 1).await;
    let broken =
        [("csrf", csrf_of(&page)), ("channel", "live".into()), ("template", "{\"text\": \"{{nope}}\"}".into())];
    let refused =
        client.post(format!("{base}/playground/save")).form(&broken).send().await.unwrap().text().await.unwrap();
    assert!(refused.contains("Not saved") || refused.contains("Template error"), "{refused}");
    assert_ne!(
        std::fs::read_to_string(&file).unwrap(),
        "{\"text\": \"{{nope}}\"}",
        "a failing template is not written"
    );
    let saved = client.post(format!("{base}/playground/save")).form(&form).send().await.unwrap().text().await.unwrap();
    assert!(saved.contains("Saved <code>slack/message.json.hbs</code>"), "{saved}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), edited);
    wait_for_reloads(&app, "reloads", 2).await;
    assert_eq!(app.post_event(&message("c", "user", "hello")).await.status(), 200);
    wait_until("the post", Duration::from_secs(10), async || !bodies(&app.slack).await.is_empty()).await;
    assert_eq!(bodies(&app.slack).await[0]["text"], "saved: hello", "the saved template is in force");
}

#[tokio::test]
async fn the_last_real_events_are_playground_input() {
    let app = spawn_app().await;
    let real = message("call-77", "user", "a real <b>utterance</b> @here");
    assert_eq!(app.post_event(&real).await.status(), 200);
    wait_until("the post", Duration::from_secs(10), async || !bodies(&app.slack).await.is_empty()).await;
    let base = console(&app);
    let page = reqwest::get(format!("{base}/playground?channel=live")).await.unwrap().text().await.unwrap();
    let option = regex::Regex::new(r#"<option value="(r\d+)">message · call call-77"#).unwrap();
    let seq = option.captures(&page).unwrap_or_else(|| panic!("no recent event offered: {page}"))[1].to_owned();
    let chosen =
        reqwest::get(format!("{base}/playground?channel=live&sample={seq}")).await.unwrap().text().await.unwrap();
    assert!(chosen.contains("a real &lt;b&gt;utterance&lt;/b&gt; @here"), "its text, escaped, in the page: {chosen}");
    let start = chosen.find("id=\"preview\"").unwrap();
    assert_eq!(exact_body(&chosen[start..]), bodies(&app.slack).await[0], "previewed exactly as it was posted");
}

#[tokio::test]
async fn a_channel_held_by_a_429_shows_as_paused_with_the_reason() {
    let app = spawn_app().await;
    slack_answers(
        &app,
        ResponseTemplate::new(429).insert_header("Retry-After", "30").set_body_string("rate_limited"),
        None,
    )
    .await;
    assert_eq!(app.post_event(&message("c", "user", "wait for it")).await.status(), 200);
    let base = console(&app);
    let mut overview = String::new();
    wait_until("the paused state", Duration::from_secs(10), async || {
        overview = reqwest::get(format!("{base}/fragments/overview")).await.unwrap().text().await.unwrap();
        overview.contains("paused: rate limited by the platform (429)")
    })
    .await;
    assert!(overview.contains("<td class=\"num\">1</td>"), "one waiting: {overview}");
    assert!(overview.contains("live: <span class=\"state waiting\">waiting</span>"), "{overview}");
}

/// Every exact body a preview shows, in order (thread parent, posts, parent edit).
fn exact_bodies(fragment: &str) -> Vec<serde_json::Value> {
    fragment.split("<pre>").skip(1).map(|rest| exact_body(&format!("<pre>{rest}"))).collect()
}

/// What the lane sent in a request to Slack's Web API, without what the sink adds (the channel,
/// the reply's parent, the edited message).
fn as_planned(mut body: serde_json::Value) -> serde_json::Value {
    for key in ["channel", "thread_ts", "ts"] {
        body.as_object_mut().unwrap().remove(key);
    }
    body
}

const THREADED_AND_TRANSCRIBED: &str = r#"
[server]
listen = "127.0.0.1:0"
[channels.thread]
kind = "slack"
bot_token = "xoxb-test"
channel = "C0123ABCD"
api_url = "{slack_base}/api"
threads = "per_call"
rate_limit = ["1000/1s"]
[channels.calls]
kind = "discord"
webhook_url = "{discord}"
live_transcript = true
rate_limit = ["1000/1s"]
[[routes]]
events = ["message", "call_ended"]
channels = ["thread", "calls"]
"#;

#[tokio::test]
async fn the_playground_previews_threads_and_transcripts_step_by_step_as_the_lane_posts_them() {
    let app = spawn_with(THREADED_AND_TRANSCRIBED).await;
    let said = message("call-p", "user", "where is my order?");

    // A threaded Slack app channel: the call's parent, then the utterance replying to it.
    let fragment = preview(&app, &[("channel", "thread"), ("event", &said.to_string())]).await;
    assert!(
        fragment.contains("the call's thread parent") && fragment.contains("in the call's new thread"),
        "{fragment}"
    );
    let shown = exact_bodies(&fragment);
    assert_eq!(app.post_event(&said).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    let sent: Vec<serde_json::Value> = app.slack_api.requests().into_iter().map(|(_, b)| as_planned(b)).collect();
    assert_eq!(shown, sent, "parent and reply, exactly as the lane posted them");

    // The summary: a reply in the thread, then the parent edited with the outcome. The relay
    // fills the agent in from the call's messages; the preview is of the summary as it took it.
    let ended = call_ended("call-p", "negative");
    let mut as_taken = ended.clone();
    as_taken["call_data"] = serde_json::json!({"agentId": "agent_456"});
    let shown = exact_bodies(&preview(&app, &[("channel", "thread"), ("event", &as_taken.to_string())]).await);
    assert_eq!(app.post_event(&ended).await.status(), 200);
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    let requests = app.slack_api.requests();
    let sent: Vec<serde_json::Value> = requests[2..].iter().map(|(_, b)| as_planned(b.clone())).collect();
    assert_eq!(requests.last().unwrap().0, "chat.update");
    assert_eq!(shown, sent, "the summary reply, then the parent's edit");

    // A live-transcript channel: the utterance as the call's transcript message.
    let fragment = preview(&app, &[("channel", "calls"), ("event", &said.to_string())]).await;
    assert!(fragment.contains("joins the call's live transcript message"), "{fragment}");
    let page = browser()
        .get(format!("{}/playground", console(&app)))
        .query(&[("channel", "calls"), ("event", &said.to_string())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<code>discord/transcript.json.hbs</code>"), "the transcript template is the one to edit");
    let shown = exact_bodies(&fragment);
    let first_post = app.discord_api.requests().into_iter().map(|(_, _, b)| b).next().unwrap();
    assert_eq!(shown, [first_post], "the transcript message, exactly as the lane posted it");
}

#[tokio::test]
async fn the_playground_draws_teams_and_google_chat_cards_and_an_endpoints_request_without_its_secrets() {
    let toml = r#"
[server]
listen = "127.0.0.1:0"
[channels.team]
kind = "teams"
webhook_url = "https://prod.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=TeAmSsIg"
[channels.space]
kind = "google_chat"
webhook_url = "https://chat.googleapis.com/v1/spaces/A/messages?key=GcKeY&token=GcToKeN"
[channels.crm]
kind = "http"
url = "https://crm.example/hooks?token=CrMuRlToKeN"
signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
headers = { "Authorization" = "Bearer CrMhEaDeR" }
[[routes]]
channels = ["team", "space", "crm"]
"#;
    let app = spawn_with(toml).await;
    let ended = call_ended("call-v", "negative").to_string();
    let team = preview(&app, &[("channel", "team"), ("event", &ended)]).await;
    assert!(team.contains("class=\"teams\"") && team.contains("<dt>Caller</dt><dd>John Doe</dd>"), "{team}");
    let space = preview(&app, &[("channel", "space"), ("event", &ended)]).await;
    assert!(space.contains("class=\"gchat\"") && space.contains("Account Support"), "{space}");
    let crm = preview(&app, &[("channel", "crm"), ("event", &ended)]).await;
    assert!(crm.contains("POST <span class=\"url\">https://crm.example/…</span>"), "{crm}");
    assert!(crm.contains("Authorization: (secret)") && crm.contains("webhook-signature: v1,(redacted)"), "{crm}");
    for secret in ["TeAmSsIg", "GcKeY", "GcToKeN", "CrMuRlToKeN", "CrMhEaDeR", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
        assert!(![&team, &space, &crm].iter().any(|p| p.contains(secret)), "{secret} shown");
    }
}
