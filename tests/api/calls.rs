//! The relay remembers each call: a summary (which Beyond Presence sends without an agent) is
//! routed by the agent its call's messages named, also across a restart and across two replicas;
//! `call_started` is posted once per call, ahead of the call's posts; a call that goes quiet
//! without a `call_ended` gets one `call_timed_out`, which closes its thread's parent and its live
//! transcript.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::postgres::fresh_schema;

/// Messages and call starts to a Slack webhook; agent 456's summaries to Discord.
const BY_AGENT: &str = r#"
[server]
listen = "127.0.0.1:0"
path = "/webhook"

[channels.live]
kind = "slack"
webhook_url = "{slack}"
rate_limit = ["1000/1s"]
coalesce = false

[channels.escalations]
kind = "discord"
webhook_url = "{discord}"
rate_limit = ["1000/1s"]

[[routes]]
name = "live messages"
events = ["call_started", "message"]
channels = ["live"]

[[routes]]
name = "agent 456 summaries"
events = ["call_ended"]
channels = ["escalations"]
[routes.match]
agent_id = "agent_456"
"#;

/// A `message` of `call` from `agent`, as Beyond Presence sends it.
fn said_to(call: &str, agent: &str, text: &str) -> Value {
    let mut m = message(call, "user", text);
    m["call_data"]["agentId"] = json!(agent);
    m
}

/// The calls whose summary Discord got (from the embeds' footers, `call <id>`).
async fn summarised(discord: &wiremock::MockServer) -> Vec<String> {
    bodies(discord)
        .await
        .iter()
        .flat_map(strings)
        .filter_map(|s| s.strip_prefix("call ").map(str::to_owned))
        .filter(|s| !s.contains(' '))
        .collect()
}

/// What the Slack webhook got: for each post, the call's start (`started <call>`) or the text.
async fn live(slack: &wiremock::MockServer) -> Vec<String> {
    bodies(slack)
        .await
        .iter()
        .map(|b| {
            let all = strings(b).join("\n");
            match all.contains("Call started") {
                true => format!("started {}", all.split('`').nth(1).unwrap_or("?")),
                false => slack_messages(std::slice::from_ref(b)).concat(),
            }
        })
        .collect()
}

/// `toml` with its store on a fresh PostgreSQL schema; `None` (with a note) without a server.
async fn on_postgres(toml: &str) -> Option<String> {
    let url = fresh_schema().await?;
    Some(toml.replacen("[server]", &format!("[store]\nurl = \"{url}\"\n\n[server]"), 1))
}

#[tokio::test]
async fn a_route_on_agent_id_gets_that_agents_summaries_though_call_ended_names_no_agent() {
    routes_by_agent(BY_AGENT).await;
}

#[tokio::test]
async fn on_postgresql_a_route_on_agent_id_gets_that_agents_summaries() {
    let Some(toml) = on_postgres(BY_AGENT).await else { return };
    routes_by_agent(&toml).await;
}

async fn routes_by_agent(toml: &str) {
    let app = spawn_with(toml).await;
    for (call, agent, text) in [("c-1", "agent_456", "one"), ("c-2", "agent_999", "two"), ("c-1", "agent_456", "three")]
    {
        assert_eq!(app.post_event(&said_to(call, agent, text)).await.status(), 200);
    }
    // Real summaries: no call_data, no agent.
    for call in ["c-1", "c-2", "c-never-seen"] {
        let ended = call_ended(call, "negative");
        assert!(ended.get("call_data").is_none());
        let answer: Value = app.post_event(&ended).await.json().await.unwrap();
        assert_eq!(answer["deliveries"], json!(if call == "c-1" { 1 } else { 0 }), "{call}: {answer}");
    }
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);
    assert_eq!(summarised(&app.discord).await, ["c-1"], "agent 456's summary only");
    let summary = strings(&bodies(&app.discord).await[0]).join("\n");
    assert!(summary.contains("agent_456"), "the template sees the agent too: {summary}");
    assert_eq!(
        live(&app.slack).await,
        ["started c-1", "one", "started c-2", "two", "three", "started c-never-seen"],
        "each call's start once, ahead of its posts (a call first heard of by its summary starts too)"
    );
}

#[tokio::test]
async fn a_restart_between_a_calls_messages_and_its_summary_still_routes_it_by_agent() {
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    let (_dir, file) = write_config(BY_AGENT, &slack, &discord);
    let first = Served::config(&file);
    assert_eq!(first.post_event(&said_to("c-r", "agent_456", "before")).await.status(), 200);
    first.wait_idle().await;
    drop(first); // kill -9: the call's memory is in the store
    let second = Served::config(&file);
    assert_eq!(second.post_event(&said_to("c-r", "agent_456", "after")).await.status(), 200);
    assert_eq!(second.post_event(&call_ended("c-r", "positive")).await.status(), 200);
    second.wait_idle().await;
    assert_eq!(summarised(&discord).await, ["c-r"], "relay said:\n{}", second.log());
    assert_eq!(live(&slack).await, ["started c-r", "before", "after"], "no second start after the restart");
}

#[tokio::test]
async fn two_replicas_share_what_each_call_told_and_start_each_call_once() {
    let Some(url) = fresh_schema().await else { return };
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    let toml =
        BY_AGENT.replace("[channels.live]", "[store]\nurl = \"${CALLRELAY_TEST_DATABASE_URL}\"\n\n[channels.live]");
    let (_dir, file) = write_config(&toml, &slack, &discord);
    let replica = || {
        let mut cmd = bin();
        cmd.arg("--config").arg(&file).env("CALLRELAY_TEST_DATABASE_URL", &url);
        Served::start(cmd)
    };
    let (a, b) = (replica(), replica());
    // Each call's first two messages reach the two replicas at the same moment.
    let calls: Vec<String> = (0..10).map(|i| format!("c-{i}")).collect();
    for call in &calls {
        let (to_a, to_b) =
            (said_to(call, "agent_456", &format!("{call} a")), said_to(call, "agent_456", &format!("{call} b")));
        let (one, two) = tokio::join!(a.post_event(&to_a), b.post_event(&to_b));
        assert_eq!((one.status().as_u16(), two.status().as_u16()), (200, 200));
    }
    // Every summary reaches the replica that did not take the call's first message.
    for call in &calls {
        assert_eq!(b.post_event(&call_ended(call, "neutral")).await.status(), 200);
    }
    let all_in = async || summarised(&discord).await.len() >= calls.len() && live(&slack).await.len() >= 30;
    wait_until("every post", Duration::from_secs(30), all_in).await;
    a.wait_idle().await;
    b.wait_idle().await;
    let mut got = summarised(&discord).await;
    got.sort();
    let mut want = calls.clone();
    want.sort();
    assert_eq!(got, want, "every summary routed by the agent its messages named");
    let posted = live(&slack).await;
    assert_eq!(posted.len(), 30, "{posted:#?}");
    for call in &calls {
        let at = |what: &str| posted.iter().position(|p| p == what);
        let started = posted.iter().filter(|p| **p == format!("started {call}")).count();
        assert_eq!(started, 1, "{call} started once: {posted:#?}");
        let start = at(&format!("started {call}")).unwrap();
        assert!(start < at(&format!("{call} a")).unwrap() && start < at(&format!("{call} b")).unwrap(), "{posted:#?}");
    }
}

/// A threaded Slack app channel and a Discord live-transcript channel, calls timed out after 1 s.
const QUIET: &str = r#"
[server]
listen = "127.0.0.1:0"
[calls]
end_after = "1s"
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
async fn a_call_that_goes_quiet_times_out_once_closing_its_thread_parent_and_transcript() {
    times_out(QUIET).await;
}

#[tokio::test]
async fn on_postgresql_a_call_that_goes_quiet_times_out_once() {
    let Some(toml) = on_postgres(QUIET).await else { return };
    times_out(&toml).await;
}

async fn times_out(toml: &str) {
    let app = spawn_with(toml).await;
    for text in ["hello", "are you there?"] {
        assert_eq!(app.post_event(&message("c-quiet", "user", text)).await.status(), 200);
    }
    for event in [message("c-done", "user", "bye"), call_ended("c-done", "positive")] {
        assert_eq!(app.post_event(&event).await.status(), 200);
    }
    let no_summary = "ended; no summary received";
    let closed = async || {
        let parent = app.slack_api.messages().iter().any(|m| m.thread_ts.is_none() && m.text().contains(no_summary));
        parent && app.discord_api.messages().iter().any(|m| m.text().contains(no_summary))
    };
    wait_until("the quiet call's parent and transcript closed", Duration::from_secs(15), closed).await;
    // Time enough for any second time-out (the sweep runs every second).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(app.dispatcher.idle(Duration::from_secs(20)).await);

    let slack = app.slack_api.messages();
    let parents: Vec<_> = slack.iter().filter(|m| m.thread_ts.is_none()).collect();
    assert_eq!(parents.len(), 2, "{slack:#?}");
    let quiet = parents.iter().find(|m| m.text().contains("c-quiet")).unwrap();
    assert!(quiet.text().contains(no_summary) && quiet.updates == 1, "{quiet:#?}");
    let done = parents.iter().find(|m| m.text().contains("c-done")).unwrap();
    assert!(done.text().contains("Call ended") && !done.text().contains(no_summary), "{done:#?}");
    let replies: Vec<String> =
        slack.iter().filter(|m| m.thread_ts.as_deref() == Some(quiet.ts.as_str())).map(|m| m.text()).collect();
    assert_eq!(replies.iter().filter(|t| t.contains(no_summary)).count(), 1, "one call_timed_out: {replies:#?}");
    assert!(replies.last().unwrap().contains("after 2 utterance(s)"), "{replies:#?}");
    assert!(!slack.iter().any(|m| m.text().contains(no_summary) && m.text().contains("c-done")), "{slack:#?}");

    let discord = app.discord_api.messages();
    let transcript = discord.iter().find(|m| m.text().contains("are you there?")).unwrap();
    assert!(
        transcript.text().contains(no_summary) && !transcript.text().contains("Live transcript"),
        "{transcript:#?}"
    );
    let done_transcript = discord.iter().find(|m| m.text().contains("bye")).unwrap();
    assert!(
        done_transcript.text().contains("call ended"),
        "the summary closes its transcript too: {done_transcript:#?}"
    );
}

/// The README's example of call lifecycle notifications, as written but for a 1 s `end_after`:
/// "a call started", then "ended; no summary received" for a call that went quiet.
#[tokio::test]
async fn the_readmes_call_lifecycle_example_notifies_a_start_and_a_call_that_never_ended() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let example = readme
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .find(|b| b.contains("call lifecycle"))
        .expect("the README's call lifecycle example");
    assert!(example.contains("end_after = \"30m\""), "{example}");
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[channels.ops]\nkind = \"slack\"\nwebhook_url = \"{{slack}}\"\n\
         rate_limit = [\"1000/1s\"]\n{}",
        example.replace("end_after = \"30m\"", "end_after = \"1s\"")
    );
    let app = spawn_with(&toml).await;
    assert_eq!(app.post_event(&message("c-life", "user", "hello")).await.status(), 200);
    let ops = async || strings(&json!(bodies(&app.slack).await)).join("\n");
    wait_until("the call's start and time-out in #ops", Duration::from_secs(15), async || {
        ops().await.contains("no summary received")
    })
    .await;
    let said = ops().await;
    assert!(said.find("Call started").unwrap() < said.find("no summary received").unwrap(), "{said}");
    assert!(!said.contains("hello"), "messages are not routed to #ops: {said}");
}
