//! The plan as a table: each kind of channel, each event type, each thing the channel holds of
//! the call, with the shipped templates.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use super::*;
use crate::config::{TemplateOverrides, WebhookUrl};
use crate::platforms::discord::DISCORD;
use crate::platforms::google_chat::GOOGLE_CHAT;
use crate::platforms::slack::SLACK;
use crate::platforms::{Platform, Target};

fn channel(platform: Platform, threads: Threads, live_transcript: bool) -> Channel {
    Channel {
        name: "c".into(),
        platform,
        target: Ok(Target::webhook(WebhookUrl::parse("https://example.test/hook").unwrap())),
        username: None,
        avatar_url: None,
        coalesce: true,
        rate_limit: vec![],
        threads,
        broadcast_summary: false,
        live_transcript,
    }
}

/// A renderer whose channel `c` is on `platform`.
fn renderer_for(platform: Platform) -> Renderer {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let channels = BTreeMap::from([("c".to_owned(), (platform, TemplateOverrides::default()))]);
    Renderer::load(&dir, &channels).unwrap()
}

/// An event as Beyond Presence sends it, normalised as the relay's templates see it.
fn normalised(raw: Value) -> Value {
    let crate::event::Incoming::Event(e) = crate::event::from_value(&raw, chrono::Utc::now()).unwrap() else {
        panic!("not an event: {raw}")
    };
    crate::intake::context(&e)
}

fn message() -> Value {
    normalised(json!({"event_type": "message", "call_id": "call-1",
           "message": {"sender": "user", "message": "hello there", "sent_at": "2024-01-15T10:30:00Z"},
           "call_data": {"agentId": "agent_456", "userName": "John Doe"}}))
}

fn ended() -> Value {
    normalised(json!({"event_type": "call_ended", "call_id": "call-1", "user_name": "John Doe",
           "evaluation": {"topic": "Account Support", "user_sentiment": "positive", "duration_minutes": 5.5},
           "messages": [{"sender": "user", "message": "my card", "sent_at": "2024-01-15T10:30:00Z"}]}))
}

/// The relay's `call_started` for the call of [`message`].
fn started() -> Value {
    let raw = json!({"event_type": "message", "call_id": "call-1",
           "message": {"sender": "user", "message": "hello there", "sent_at": "2024-01-15T10:30:00Z"},
           "call_data": {"agentId": "agent_456", "userName": "John Doe"}});
    let crate::event::Incoming::Event(e) = crate::event::from_value(&raw, chrono::Utc::now()).unwrap() else {
        panic!()
    };
    crate::intake::context(&e.started())
}

/// The relay's `call_timed_out` for the call of [`message`].
fn timed_out() -> Value {
    let mut v = started();
    v["event_type"] = json!("call_timed_out");
    v["call"] = json!({"started_at": "2024-01-15T10:30:00+00:00", "last_event_at": "2024-01-15T10:34:00+00:00",
                       "utterances": 3, "silent_minutes": 30.0});
    v
}

/// Start, place, number of posts, template, parent edited.
type Shape<'a> = (&'a str, &'a str, usize, &'a str, bool);

/// What a plan looks like, in short: how the thread starts, where the posts go, how many posts
/// of which template, whether the parent is edited.
fn shape(p: &Plan) -> (&'static str, String, usize, &'static str, bool) {
    let start = match &p.start {
        None => "-",
        Some(Ok(Start::Parent(_))) => "parent",
        Some(Ok(Start::Named(_))) => "named",
        Some(Err(_)) => "error",
    };
    let place = match &p.place {
        Where::Channel => "channel".to_owned(),
        Where::Thread(t) => format!("thread {t}"),
        Where::Started => "started".to_owned(),
        Where::FirstPostIsParent => "first post is parent".to_owned(),
    };
    (start, place, p.posts.len(), p.kind, matches!(p.edit_parent, Some(Ok(_))))
}

#[test]
fn each_channel_event_and_call_state_has_one_plan() {
    use Threads::{Flat, PerCall};
    let open = || Thread::Open("1.2".into());
    let none = Call::new_call();
    let with = |thread: Thread| Call { thread, ..Call::new_call() };
    let no_threads = Call { no_threads: true, ..Call::new_call() };
    #[rustfmt::skip]
    let table: Vec<(Platform, Threads, bool, Value, Call, Shape)> = vec![
        // platform, threads, live transcript, event, call → start, place, posts, template, parent edited
        (SLACK, Flat, false, message(), none.clone(), ("-", "channel", 1, "message", false)),
        (SLACK, PerCall, false, message(), none.clone(), ("parent", "started", 1, "message", false)),
        (SLACK, PerCall, false, message(), with(open()), ("-", "thread 1.2", 1, "message", false)),
        (SLACK, PerCall, false, message(), with(Thread::Flat), ("-", "channel", 1, "message", false)),
        (SLACK, PerCall, false, message(), no_threads.clone(), ("-", "channel", 1, "message", false)),
        (SLACK, PerCall, false, ended(), with(open()), ("-", "thread 1.2", 1, "call_ended", true)),
        (SLACK, PerCall, false, ended(), none.clone(), ("-", "first post is parent", 2, "call_ended", false)),
        (SLACK, PerCall, false, ended(), with(Thread::SummaryParent("9.9".into())), ("-", "thread 9.9", 2, "call_ended", false)),
        (SLACK, Flat, true, message(), none.clone(), ("-", "channel", 1, "transcript", false)),
        (SLACK, PerCall, true, message(), none.clone(), ("parent", "started", 1, "transcript", false)),
        (DISCORD, Flat, false, ended(), none.clone(), ("-", "channel", 1, "call_ended", false)),
        (DISCORD, PerCall, false, message(), none.clone(), ("named", "started", 1, "message", false)),
        (DISCORD, PerCall, false, ended(), with(open()), ("-", "thread 1.2", 1, "call_ended", false)),
        (DISCORD, PerCall, true, message(), none.clone(), ("named", "started", 1, "transcript", false)),
        (DISCORD, PerCall, false, message(), no_threads, ("-", "channel", 1, "message", false)),
        (GOOGLE_CHAT, PerCall, false, message(), none.clone(), ("-", "thread call-1", 1, "message", false)),
        (GOOGLE_CHAT, PerCall, false, ended(), with(open()), ("-", "thread call-1", 1, "call_ended", false)),
        (GOOGLE_CHAT, Flat, false, message(), none.clone(), ("-", "channel", 1, "message", false)),
        // The relay's own events: on a channel whose threads have a parent, `call_started` is it.
        (SLACK, Flat, false, started(), none.clone(), ("-", "channel", 1, "call_started", false)),
        (SLACK, PerCall, false, started(), none.clone(), ("parent", "started", 0, "call_started", false)),
        (SLACK, PerCall, false, started(), with(open()), ("-", "thread 1.2", 0, "call_started", false)),
        (DISCORD, PerCall, false, started(), none.clone(), ("named", "started", 1, "call_started", false)),
        (GOOGLE_CHAT, PerCall, false, started(), none.clone(), ("-", "thread call-1", 1, "call_started", false)),
        (SLACK, PerCall, false, timed_out(), with(open()), ("-", "thread 1.2", 1, "call_timed_out", true)),
        (SLACK, PerCall, false, timed_out(), none.clone(), ("-", "first post is parent", 1, "call_timed_out", false)),
        (DISCORD, PerCall, false, timed_out(), with(open()), ("-", "thread 1.2", 1, "call_timed_out", false)),
    ];
    for (platform, threads, live, event, call, expected) in table {
        let r = renderer_for(platform);
        let c = channel(platform, threads, live);
        let event_type = EventType::from_name(event["event_type"].as_str().unwrap()).unwrap();
        let p = plan(&r, &c, event_type, &event, &call).unwrap();
        let (start, place, posts, kind, edited) = shape(&p);
        assert_eq!(
            (start, place.as_str(), posts, kind, edited),
            expected,
            "{platform:?} {threads:?} transcript={live} {event_type:?} {call:?}"
        );
    }
}

#[test]
fn the_steps_carry_what_the_templates_draw() {
    let r = renderer_for(SLACK);
    let c = channel(SLACK, Threads::PerCall, false);
    let p = plan(&r, &c, EventType::Message, &message(), &Call::new_call()).unwrap();
    let Some(Ok(Start::Parent(parent))) = &p.start else { panic!("{p:?}") };
    assert!(parent.contains("Call started with John Doe"), "{parent}");
    assert!(p.posts[0].contains("hello there"));
    let p =
        plan(&r, &c, EventType::CallEnded, &ended(), &Call { thread: Thread::Open("1.2".into()), ..Call::new_call() })
            .unwrap();
    let Some(Ok(edit)) = &p.edit_parent else { panic!("{p:?}") };
    assert!(edit.contains("Call with John Doe ended: Account Support (5m 30s)"), "{edit}");
    let p = plan(
        &r,
        &c,
        EventType::CallTimedOut,
        &timed_out(),
        &Call { thread: Thread::Open("1.2".into()), ..Call::new_call() },
    )
    .unwrap();
    let Some(Ok(edit)) = &p.edit_parent else { panic!("{p:?}") };
    assert!(edit.contains("ended; no summary received"), "{edit}");
    assert!(p.posts[0].contains("after 3 utterance(s)") && p.posts[0].contains("No event for 30m"), "{:?}", p.posts);
    // A summary-only channel: the summary without its transcript, then the transcript.
    let p = plan(&r, &c, EventType::CallEnded, &ended(), &Call::new_call()).unwrap();
    assert!(!p.posts[0].contains("my card") && p.posts[1].contains("my card"), "{:?}", p.posts);

    let r = renderer_for(DISCORD);
    let c = channel(DISCORD, Threads::PerCall, false);
    let p = plan(&r, &c, EventType::Message, &message(), &Call::new_call()).unwrap();
    let Some(Ok(Start::Named(name))) = &p.start else { panic!("{p:?}") };
    assert!(name.contains("John Doe"), "{name}");
}

#[test]
fn a_transcript_shows_what_it_showed_plus_the_new_utterance() {
    let r = renderer_for(SLACK);
    let c = channel(SLACK, Threads::Flat, true);
    let earlier = json!({"sender": "ai", "message": "earlier words", "sent_at": "2024-01-15T10:29:00Z"});
    let call = Call { transcript: Some((vec![earlier], 2)), ..Call::new_call() };
    let p = plan(&r, &c, EventType::Message, &message(), &call).unwrap();
    assert!(p.transcript && p.part == 2 && p.transcript_lines.len() == 2);
    let body = &p.posts[0];
    assert!(body.find("earlier words").unwrap() < body.find("hello there").unwrap(), "{body}");
    assert!(body.contains("part 2"), "{body}");
    // No message being edited: a new one, at the next part.
    let call = Call { next_part: 3, ..Call::new_call() };
    let p = plan(&r, &c, EventType::Message, &message(), &call).unwrap();
    assert_eq!((p.part, p.transcript_lines.len()), (3, 1));
}

#[test]
fn the_end_of_a_call_closes_its_live_transcript() {
    let r = renderer_for(SLACK);
    let c = channel(SLACK, Threads::Flat, true);
    let said = json!({"sender": "user", "message": "earlier words", "sent_at": "2024-01-15T10:29:00Z"});
    let call = Call {
        transcript: Some((vec![said], 2)),
        transcript_message: Some(("1700.5".into(), None)),
        ..Call::new_call()
    };
    for (event_type, event, says) in [
        (EventType::CallEnded, ended(), "call ended"),
        (EventType::CallTimedOut, timed_out(), "ended; no summary received"),
    ] {
        let p = plan(&r, &c, event_type, &event, &call).unwrap();
        let Some(Ok(closed)) = &p.close_transcript else { panic!("{p:?}") };
        assert!(closed.contains(says) && closed.contains("earlier words") && closed.contains("part 2"), "{closed}");
        assert!(!closed.contains("Live transcript"), "{closed}");
    }
    // Nothing to close: no transcript message on the channel, or no live transcript.
    assert_eq!(plan(&r, &c, EventType::CallEnded, &ended(), &Call::new_call()).unwrap().close_transcript, None);
    let flat = channel(SLACK, Threads::Flat, false);
    assert_eq!(plan(&r, &flat, EventType::CallEnded, &ended(), &call).unwrap().close_transcript, None);
}

#[test]
fn a_failing_thread_template_is_an_error_in_the_start_step_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("slack")).unwrap();
    std::fs::write(dir.path().join("slack/call_started.json.hbs"), "{\"text\": {{nosuch}} }").unwrap();
    let channels = BTreeMap::from([("c".to_owned(), (SLACK, TemplateOverrides::default()))]);
    let r = Renderer::load(dir.path(), &channels).unwrap();
    let c = channel(SLACK, Threads::PerCall, false);
    let p = plan(&r, &c, EventType::Message, &message(), &Call::new_call()).unwrap();
    assert!(matches!(p.start, Some(Err(_))), "{:?}", p.start);
    assert_eq!(p.posts.len(), 1, "the posts themselves still render");
}
