//! The behaviour every store backend must show, written once: each backend's tests expand
//! [`contract_tests!`] with a fresh store of their own, so every contract test below runs on
//! every backend by construction (a new one is a function here and its name in the macro).

use std::sync::Arc;

use super::{
    now_ms, Accepted, CallNote, Content, Fence, NewEvent, OnceKey, Queued, Remembered, Store, StoreError, Transcript,
};

/// An event for `channels` whose JSON carries `text`.
pub fn event(channels: &[&str], text: &str) -> NewEvent {
    NewEvent {
        call_id: "c".into(),
        event_type: "message".into(),
        event: format!("{{\"text\":\"{text}\"}}"),
        channels: channels.iter().map(|c| c.to_string()).collect(),
        routes: vec!["route-1".into()],
        recent: true,
        call: None,
        started: None,
        shown: None,
    }
}

/// An event of call `call` for `channels` telling `note`, with the call's `call_started`
/// (carrying `started`) in case it is the call's first.
pub fn of_call(call: &str, channels: &[&str], text: &str, note: CallNote, started: &str) -> NewEvent {
    NewEvent {
        call_id: call.into(),
        call: Some(note),
        started: Some(Box::new(NewEvent {
            call_id: call.into(),
            event_type: "call_started".into(),
            ..event(channels, started)
        })),
        ..event(channels, text)
    }
}

/// Takes `channel`'s lane lease for a minute, as a relay's lane would.
pub async fn hold(store: &dyn Store, channel: &str) -> Fence {
    let lease = store.lease(channel, "contract", 60_000, None).await.unwrap().expect("a free channel is granted");
    Fence { channel: channel.into(), token: lease.token }
}

/// Accepts `e` and insists it was new.
pub async fn accept(store: &dyn Store, e: NewEvent) -> Result<(), StoreError> {
    assert_eq!(store.accept(Some(e), vec![]).await?, Accepted::New);
    Ok(())
}

/// The `text` of each entry's event (or its pre-version-2 body).
pub fn texts(q: &[Queued]) -> Vec<String> {
    q.iter()
        .map(|d| match &d.content {
            Content::Event(e) => {
                serde_json::from_str::<serde_json::Value>(e).unwrap()["text"].as_str().unwrap().to_owned()
            }
            Content::Rendered { body, .. } => body.clone(),
        })
        .collect()
}

/// Each event is queued once per channel, in acceptance order, with its call and type.
pub async fn queues_per_channel_in_order(store: Arc<dyn Store>) {
    let store = &*store;
    accept(store, event(&["a", "b"], "1")).await.unwrap();
    accept(store, event(&["a"], "2")).await.unwrap();
    accept(store, event(&["a"], "3")).await.unwrap();
    let a = store.pending("a", 10).await.unwrap();
    assert_eq!(texts(&a), ["1", "2", "3"]);
    store.delivered(&hold(store, "a").await, vec![a[0].id]).await.unwrap();
    assert_eq!(texts(&store.pending("a", 10).await.unwrap()), ["2", "3"]);
    let b = store.pending("b", 10).await.unwrap();
    assert_eq!(texts(&b), ["1"], "delivering to one channel leaves the others' entries");
    assert_eq!((b[0].call_id.as_str(), b[0].event_type.as_str()), ("c", "message"));
    assert_eq!(texts(&store.pending("a", 1).await.unwrap()), ["2"]);
    let depths = store.depths().await.unwrap();
    assert_eq!(depths.iter().map(|d| (d.channel.as_str(), d.pending)).collect::<Vec<_>>(), [("a", 2), ("b", 1)]);
    assert_eq!(store.accept(None, vec![]).await.unwrap(), Accepted::New);
    assert_eq!(store.accept(Some(event(&[], "unrouted")), vec![]).await.unwrap(), Accepted::New);
    assert_eq!(store.depths().await.unwrap().iter().map(|d| d.pending).sum::<u64>(), 3);
}

/// Parts, failed attempts, dead letters (with their event), replays and purges.
pub async fn parts_attempts_dead_letters_and_replays(store: Arc<dyn Store>) {
    let store = &*store;
    accept(store, event(&["a"], "1")).await.unwrap();
    accept(store, event(&["a"], "2")).await.unwrap();
    let q = store.pending("a", 10).await.unwrap();
    let a = hold(store, "a").await;
    store.failed_attempt(&a, vec![q[0].id], "500 boom".into()).await.unwrap();
    store.failed_attempt(&a, vec![q[0].id], "502 bad gateway".into()).await.unwrap();
    assert_eq!(store.pending("a", 1).await.unwrap()[0].attempts, 2);
    store.parts_delivered(&a, q[0].id, 1).await.unwrap();
    let head = &store.pending("a", 1).await.unwrap()[0];
    assert_eq!((head.sent_parts, head.attempts), (1, 0), "the next part starts with a clean slate");
    store.failed_attempt(&a, vec![q[0].id], "500 again".into()).await.unwrap();
    store.dead_letter(&a, vec![q[0].id], "400 invalid_payload".into()).await.unwrap();
    assert_eq!(texts(&store.pending("a", 10).await.unwrap()), ["2"]);
    let dl = store.dead_letters().await.unwrap();
    assert_eq!((dl[0].reason.as_str(), dl[0].attempts, dl[0].body.as_deref()), ("400 invalid_payload", 1, None));
    assert_eq!(dl[0].event.as_deref(), Some("{\"text\":\"1\"}"), "the dead letter keeps its event for a replay");

    store.requeue(dl[0].id).await.unwrap();
    let again = store.pending("a", 10).await.unwrap();
    assert_eq!(texts(&again), ["2", "1"], "a replay joins the end of the queue");
    assert_eq!((again[1].attempts, again[1].sent_parts), (0, 0));
    assert!(store.dead_letters().await.unwrap().is_empty());
    assert_eq!(store.requeue(dl[0].id).await, Err(StoreError::NoSuchDeadLetter(dl[0].id)));

    let ids = again.iter().map(|q| q.id).collect();
    store.dead_letter(&a, ids, "gone".into()).await.unwrap();
    assert!(store.depths().await.unwrap().is_empty());
    assert_eq!(store.purge(Some(0)).await.unwrap(), 0, "none failed before the epoch");
    assert_eq!(store.purge(None).await.unwrap(), 2);
}

/// Many accepts at once all commit, none lost.
pub async fn concurrent_accepts_all_commit(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { accept(store.as_ref(), event(&["a", "b"], &i.to_string())).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.pending("a", 1000).await.unwrap().len(), 200);
    assert_eq!(store.pending("b", 1000).await.unwrap().len(), 200);
}

/// Accepts arriving together (so committed in one group) that share once-keys: of each key's
/// events exactly one is new and queued once on every channel; the others are repeats that keep
/// nothing, not even their other keys.
pub async fn repeats_arriving_together_commit_once(store: Arc<dyn Store>) {
    let later = now_ms() + 60_000;
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let store = store.clone();
            let keys = vec![
                OnceKey { key: format!("own-{i}"), expires_at_ms: later },
                OnceKey { key: format!("shared-{}", i % 20), expires_at_ms: later },
            ];
            tokio::spawn(async move { store.accept(Some(event(&["a", "b"], &i.to_string())), keys).await })
        })
        .collect();
    let mut new = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap().unwrap() {
            Accepted::New => new.push(i),
            Accepted::Seen(key) => {
                assert_eq!(key, format!("shared-{}", i % 20), "event {i} is refused by its shared key")
            }
        }
    }
    let mut firsts: Vec<usize> = new.iter().map(|i| i % 20).collect();
    firsts.sort();
    assert_eq!(firsts, (0..20).collect::<Vec<_>>(), "exactly one event per shared key is new");
    for channel in ["a", "b"] {
        let mut queued: Vec<usize> =
            texts(&store.pending(channel, 100).await.unwrap()).iter().map(|t| t.parse().unwrap()).collect();
        queued.sort();
        assert_eq!(queued, new, "each new event queued once for {channel}, no repeat");
    }
    for i in 0..60 {
        let own = vec![OnceKey { key: format!("own-{i}"), expires_at_ms: later }];
        let expected = if new.contains(&i) { Accepted::Seen(format!("own-{i}")) } else { Accepted::New };
        assert_eq!(store.accept(None, own).await.unwrap(), expected, "event {i}'s own key is kept only if it was new");
    }
}

/// A once-key refuses a second event carrying it until it expires; nothing of the second is kept.
pub async fn once_keys_refuse_repeats_until_they_expire(store: Arc<dyn Store>) {
    let store = &*store;
    let key = |k: &str, ms: i64| OnceKey { key: k.into(), expires_at_ms: now_ms() + ms };
    assert_eq!(store.accept(Some(event(&["a"], "1")), vec![key("e1", 60_000)]).await.unwrap(), Accepted::New);
    assert_eq!(
        store.accept(Some(event(&["a"], "1 again")), vec![key("e1", 60_000)]).await.unwrap(),
        Accepted::Seen("e1".into())
    );
    assert_eq!(store.accept(None, vec![key("short", 1)]).await.unwrap(), Accepted::New);
    assert_eq!(
        store.accept(Some(event(&["a"], "x")), vec![key("e2", 60_000), key("e1", 60_000)]).await.unwrap(),
        Accepted::Seen("e1".into())
    );
    assert_eq!(texts(&store.pending("a", 10).await.unwrap()), ["1"], "a duplicate writes nothing");
    assert_eq!(
        store.accept(None, vec![key("e2", 60_000)]).await.unwrap(),
        Accepted::New,
        "the other keys of a refused event are not kept"
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(store.accept(None, vec![key("short", 1)]).await.unwrap(), Accepted::New, "expired keys are forgotten");
}

/// A call's thread per channel is remembered until the time set after the call ended.
pub async fn threads_are_remembered_per_channel_until_forgotten(store: Arc<dyn Store>) {
    let store = &*store;
    assert_eq!(store.thread("a", "call-1").await.unwrap(), None);
    let (a, b) = (hold(store, "a").await, hold(store, "b").await);
    store.set_thread(&a, "call-1", "1700000000.000100".into()).await.unwrap();
    store.set_thread(&b, "call-1", "thread-9".into()).await.unwrap();
    assert_eq!(store.thread("a", "call-1").await.unwrap().as_deref(), Some("1700000000.000100"));
    assert_eq!(store.thread("b", "call-1").await.unwrap().as_deref(), Some("thread-9"));
    assert_eq!(store.thread("a", "call-2").await.unwrap(), None);
    store.forget_call_at(&a, "call-1", now_ms() + 60_000).await.unwrap();
    assert!(store.thread("a", "call-1").await.unwrap().is_some(), "kept until its time");
    store.forget_call_at(&b, "call-1", now_ms() - 1).await.unwrap();
    assert_eq!(store.thread("b", "call-1").await.unwrap(), None, "forgotten once its time has come");
    assert!(store.thread("a", "call-1").await.unwrap().is_some());
}

/// A call's live transcript message is saved, replaced, and forgotten with the call.
pub async fn transcripts_are_saved_and_forgotten_with_the_call(store: Arc<dyn Store>) {
    let store = &*store;
    assert_eq!(store.transcript("a", "call-1").await.unwrap(), None);
    let t = Transcript { message_id: "m1".into(), thread: Some("t1".into()), part: 1, lines: "[]".into() };
    let a = hold(store, "a").await;
    store.set_transcript(&a, "call-1", t.clone()).await.unwrap();
    assert_eq!(store.transcript("a", "call-1").await.unwrap(), Some(t));
    let next = Transcript { message_id: "m2".into(), thread: None, part: 2, lines: r#"[{"message":"x"}]"#.into() };
    store.set_transcript(&a, "call-1", next.clone()).await.unwrap();
    assert_eq!(store.transcript("a", "call-1").await.unwrap(), Some(next));
    assert_eq!(store.transcript("b", "call-1").await.unwrap(), None);
    store.forget_call_at(&a, "call-1", now_ms() - 1).await.unwrap();
    assert_eq!(store.transcript("a", "call-1").await.unwrap(), None);
}

/// A channel's lease: renewed by its holder, refused to another relay while held, taken by it
/// once expired or released, with a new token; the
/// old token's writes are refused and change nothing; the pacing state and the broken mark go
/// to whoever holds the channel next.
pub async fn leases_fence_off_the_previous_holder(store: Arc<dyn Store>) {
    let store = &*store;
    accept(store, event(&["a"], "1")).await.unwrap();
    accept(store, event(&["a"], "2")).await.unwrap();
    let first = store.lease("a", "relay-1", 60_000, None).await.unwrap().unwrap();
    let renewed = store.lease("a", "relay-1", 60_000, Some(first.token)).await.unwrap().unwrap();
    assert_eq!(renewed.token, first.token, "a renewal keeps the token");
    let old = Fence { channel: "a".into(), token: first.token };
    store.save_pacing(&old, r#"{"sent":[1]}"#.into()).await.unwrap();
    assert_eq!(store.lease("a", "relay-2", 60_000, None).await.unwrap(), None, "held by relay-1");
    // relay-1 stops renewing: its lease runs out.
    store.lease("a", "relay-1", 1, Some(first.token)).await.unwrap().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second = store.lease("a", "relay-2", 60_000, None).await.unwrap().expect("taken over");
    assert!(second.token > first.token, "a new holder, a new token");
    assert_eq!(second.pacing.as_deref(), Some(r#"{"sent":[1]}"#), "the budget carries over");
    assert_eq!(store.lease("a", "relay-1", 60_000, Some(first.token)).await.unwrap(), None, "no renewal back");

    let q = store.pending("a", 10).await.unwrap();
    let fenced = |r: Result<(), StoreError>| assert_eq!(r, Err(StoreError::Fenced("a".into())));
    fenced(store.delivered(&old, vec![q[0].id]).await);
    fenced(store.failed_attempt(&old, vec![q[0].id], "500".into()).await);
    fenced(store.parts_delivered(&old, q[0].id, 1).await);
    fenced(store.dead_letter(&old, vec![q[1].id], "400".into()).await);
    fenced(store.set_thread(&old, "call", "ts".into()).await);
    let t = Transcript { message_id: "m".into(), thread: None, part: 1, lines: "[]".into() };
    fenced(store.set_transcript(&old, "call", t).await);
    fenced(store.forget_call_at(&old, "call", 0).await);
    fenced(store.save_pacing(&old, "{}".into()).await);
    fenced(store.set_broken(&old, "404".into()).await);
    fenced(store.release(&old).await);
    assert_eq!(store.pending("a", 10).await.unwrap(), q, "the refused writes changed nothing");
    assert!(store.dead_letters().await.unwrap().is_empty());
    assert_eq!(store.thread("a", "call").await.unwrap(), None);

    let new = Fence { channel: "a".into(), token: second.token };
    store.set_broken(&new, "404 Unknown Webhook".into()).await.unwrap();
    store.save_pacing(&new, r#"{"sent":[2]}"#.into()).await.unwrap();
    let lanes = store.lanes().await.unwrap();
    assert_eq!((lanes[0].owner.as_str(), lanes[0].broken.as_deref()), ("relay-2", Some("404 Unknown Webhook")));
    store.delivered(&new, vec![q[0].id]).await.unwrap();
    store.release(&new).await.unwrap();
    let third = store.lease("a", "relay-3", 60_000, None).await.unwrap().expect("released: free at once");
    assert_eq!(third.pacing.as_deref(), Some(r#"{"sent":[2]}"#));
    store.clear_broken().await.unwrap();
    assert_eq!(store.lanes().await.unwrap()[0].broken, None, "a reload forgets broken marks");
    assert_eq!(texts(&store.pending("a", 10).await.unwrap()), ["2"]);
}

/// Recent events keep each post's latest status (waiting, retrying, delivered, dead-lettered),
/// per call in order or newest first, count per minute, and are forgotten on request.
pub async fn recent_events_show_each_posts_status_until_forgotten(store: Arc<dyn Store>) {
    let store = &*store;
    accept(store, event(&["a", "b"], "1")).await.unwrap();
    accept(store, event(&["a"], "2")).await.unwrap();
    let other = NewEvent { call_id: "other".into(), ..event(&["b"], "3") };
    accept(store, other).await.unwrap();
    let (a, b) = (hold(store, "a").await, hold(store, "b").await);
    let (qa, qb) = (store.pending("a", 10).await.unwrap(), store.pending("b", 10).await.unwrap());
    store.failed_attempt(&a, vec![qa[0].id], "500 boom".into()).await.unwrap();
    store.delivered(&b, vec![qb[0].id]).await.unwrap();
    store.dead_letter(&a, vec![qa[1].id], "400 bad".into()).await.unwrap();

    let newest = store.recent(None, 10).await.unwrap();
    assert_eq!(newest.iter().map(|e| e.call_id.as_str()).collect::<Vec<_>>(), ["other", "c", "c"], "newest first");
    let call = store.recent(Some("c"), 10).await.unwrap();
    assert_eq!(call.len(), 2);
    let (first, second) = (&call[0], &call[1]);
    assert!(first.id < second.id, "a call's events in order");
    assert_eq!((first.event_type.as_str(), first.routes.clone()), ("message", vec!["route-1".to_owned()]));
    let shown = |e: &super::RecentEvent| {
        e.posts.iter().map(|p| (p.channel.clone(), p.status.clone(), p.attempts, p.answer.clone())).collect::<Vec<_>>()
    };
    assert_eq!(
        shown(first),
        [("a".into(), "retrying".into(), 1, Some("500 boom".into())), ("b".into(), "delivered".into(), 0, None)]
    );
    assert_eq!(shown(second), [("a".into(), "dead_lettered".into(), 0, Some("400 bad".into()))]);
    assert_eq!(shown(&newest[0]), [("b".into(), "waiting".into(), 0, None)], "not tried yet");
    assert!(store.recent(Some("nobody"), 10).await.unwrap().is_empty());

    let activity = store.activity(0).await.unwrap();
    let total = |channel: &str| {
        activity.iter().filter(|x| x.channel == channel).fold((0, 0), |(d, f), x| (d + x.delivered, f + x.failed))
    };
    assert_eq!((total("a"), total("b")), ((0, 2), (1, 0)));
    store.forget_recent(now_ms() + 1).await.unwrap();
    assert!(store.recent(None, 10).await.unwrap().is_empty());
    assert!(store.activity(0).await.unwrap().is_empty());
}

/// A call is remembered from its events (the first agent, caller and `call_data` told, times,
/// utterances, its end); its `call_started` is committed once, ahead of its first event, even
/// when its first events arrive together.
pub async fn calls_are_remembered_and_started_once(shared_store: Arc<dyn Store>) {
    let store = &*shared_store;
    let told = CallNote {
        agent_id: Some("agent_1".into()),
        call_data: Some("{\"agentId\":\"agent_1\"}".into()),
        utterance: true,
        ..CallNote::default()
    };
    accept(store, of_call("k", &["a"], "hello", told, "started-1")).await.unwrap();
    let named = CallNote {
        user_name: Some("Ann".into()),
        agent_id: Some("agent_2".into()),
        utterance: true,
        ..CallNote::default()
    };
    accept(store, of_call("k", &["a"], "again", named, "started-2")).await.unwrap();
    let ended = CallNote { ended: true, ..CallNote::default() };
    accept(store, NewEvent { call_id: "k".into(), call: Some(ended), ..event(&["a"], "bye") }).await.unwrap();
    assert_eq!(texts(&store.pending("a", 10).await.unwrap()), ["started-1", "hello", "again", "bye"]);
    let Remembered {
        agent_id,
        user_name,
        call_data,
        utterances,
        ended_at_ms,
        first_at_ms,
        last_at_ms,
        timed_out_at_ms,
        ..
    } = store.call("k").await.unwrap().expect("remembered");
    assert_eq!(agent_id.as_deref(), Some("agent_1"), "the first agent told stays");
    assert_eq!(user_name.as_deref(), Some("Ann"), "what an earlier event lacked, a later one tells");
    assert_eq!(call_data.as_deref(), Some("{\"agentId\":\"agent_1\"}"));
    assert_eq!(utterances, 2);
    assert!(ended_at_ms.is_some() && timed_out_at_ms.is_none());
    assert!(first_at_ms <= last_at_ms);
    assert_eq!(store.call("nobody").await.unwrap(), None);

    // Eight first events of one new call at once: one `call_started`, ahead of all of them.
    let together: Vec<_> = (0..8)
        .map(|i| {
            let (store, note) = (shared_store.clone(), CallNote { utterance: true, ..CallNote::default() });
            let first = of_call("z", &["b"], &format!("m{i}"), note, "started");
            tokio::spawn(async move { store.accept(Some(first), vec![]).await })
        })
        .collect();
    for outcome in together {
        assert_eq!(outcome.await.unwrap().unwrap(), Accepted::New);
    }
    let queued = texts(&store.pending("b", 20).await.unwrap());
    assert_eq!(queued.len(), 9, "{queued:?}");
    assert_eq!(queued[0], "started", "{queued:?}");
    assert_eq!(queued.iter().filter(|t| *t == "started").count(), 1, "{queued:?}");
    assert_eq!(store.call("z").await.unwrap().unwrap().utterances, 8);
}

/// A call's last-event time moves only with an event that says so (`touch`: a busy call's are
/// written at most every so often, see [`crate::calls::Recall::touch`]) or ends it; every
/// utterance is counted either way.
pub async fn a_calls_time_moves_only_when_an_event_says_so(store: Arc<dyn Store>) {
    let store = &*store;
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(5));
    let note = |touch| CallNote { utterance: true, touch, ..CallNote::default() };
    accept(store, of_call("t", &["a"], "1", note(true), "started")).await.unwrap();
    let first = store.call("t").await.unwrap().unwrap();
    pause().await;
    accept(store, NewEvent { call_id: "t".into(), call: Some(note(false)), ..event(&["a"], "2") }).await.unwrap();
    let quiet = store.call("t").await.unwrap().unwrap();
    assert_eq!((quiet.last_at_ms, quiet.utterances), (first.last_at_ms, 2), "untouched: counted, time kept");
    pause().await;
    accept(store, NewEvent { call_id: "t".into(), call: Some(note(true)), ..event(&["a"], "3") }).await.unwrap();
    let touched = store.call("t").await.unwrap().unwrap();
    assert!(touched.last_at_ms > first.last_at_ms, "touched: the time moves");
    assert_eq!((touched.utterances, touched.first_at_ms), (3, first.first_at_ms));
}

/// A call quiet since before the cut-off with no `call_ended` is timed out once, its event
/// committed with it (queued for the channels holding its thread or transcript as `make` says);
/// an ended call never is.
pub async fn quiet_calls_time_out_once(store: Arc<dyn Store>) {
    let store = &*store;
    let open = CallNote { agent_id: Some("agent_9".into()), utterance: true, ..CallNote::default() };
    accept(store, NewEvent { call_id: "open".into(), call: Some(open), ..event(&["a"], "hi") }).await.unwrap();
    let ended = CallNote { ended: true, ..CallNote::default() };
    accept(store, NewEvent { call_id: "done".into(), call: Some(ended), ..event(&["a"], "bye") }).await.unwrap();
    let t = hold(store, "t").await;
    store.set_thread(&t, "open", "1700.1".into()).await.unwrap();
    assert!(
        store.time_out_calls(now_ms() - 60_000, Arc::new(|_, _| unreachable!())).await.unwrap().is_empty(),
        "not quiet long enough"
    );

    let make: super::MakeTimedOut = Arc::new(|call, holding| NewEvent {
        call_id: call.call_id.clone(),
        event_type: "call_timed_out".into(),
        channels: holding.to_vec(),
        ..event(&[], &format!("timed out {} {}", call.agent_id.as_deref().unwrap_or("-"), call.utterances))
    });
    let cutoff = now_ms() + 1;
    // Two relays sweeping at once: the call is timed out by one of them.
    let (one, two) =
        tokio::join!(store.time_out_calls(cutoff, make.clone()), store.time_out_calls(cutoff, make.clone()));
    let made: Vec<NewEvent> = one.unwrap().into_iter().chain(two.unwrap()).collect();
    assert_eq!(made.iter().map(|e| e.call_id.as_str()).collect::<Vec<_>>(), ["open"]);
    assert_eq!(texts(&store.pending("t", 10).await.unwrap()), ["timed out agent_9 1"]);
    assert!(store.call("open").await.unwrap().unwrap().timed_out_at_ms.is_some());
    assert!(store.time_out_calls(now_ms() + 1, make).await.unwrap().is_empty(), "once per call");
}

/// A remembered call keeps its recent events past `forget_recent` (its page shows the whole
/// conversation); once the call is forgotten, they go too.
pub async fn a_remembered_calls_events_outlive_the_recent_window(store: Arc<dyn Store>) {
    let store = &*store;
    let note = CallNote { utterance: true, ..CallNote::default() };
    let said = NewEvent {
        call_id: "kept".into(),
        call: Some(note),
        shown: Some("{\"said\":1}".into()),
        ..event(&["a"], "said")
    };
    accept(store, said).await.unwrap();
    accept(store, NewEvent { call_id: "plain".into(), ..event(&["a"], "other") }).await.unwrap();
    store.forget_recent(now_ms() + 1).await.unwrap();
    let kept = store.recent(None, 10).await.unwrap();
    assert_eq!(kept.iter().map(|e| e.call_id.as_str()).collect::<Vec<_>>(), ["kept"]);
    assert_eq!(kept[0].shown.as_deref(), Some("{\"said\":1}"), "what the call page shows of it");
    store.forget_calls(now_ms() - 60_000).await.unwrap();
    assert!(store.call("kept").await.unwrap().is_some(), "not quiet long enough to forget");
    store.forget_calls(now_ms() + 1).await.unwrap();
    assert_eq!(store.call("kept").await.unwrap(), None);
    store.forget_recent(now_ms() + 1).await.unwrap();
    assert!(store.recent(None, 10).await.unwrap().is_empty());
}

/// Every contract test above, as `#[tokio::test]`s in a module `contract_suite`, for one backend:
/// `$fresh().await` gives `Some((guard, store))` (the guard keeps whatever the store needs alive)
/// or `None` to skip (no server, outside CI).
macro_rules! contract_tests {
    ($fresh:ident) => {
        $crate::store::contract::contract_tests!(@each $fresh;
            queues_per_channel_in_order,
            parts_attempts_dead_letters_and_replays,
            concurrent_accepts_all_commit,
            once_keys_refuse_repeats_until_they_expire,
            threads_are_remembered_per_channel_until_forgotten,
            transcripts_are_saved_and_forgotten_with_the_call,
            recent_events_show_each_posts_status_until_forgotten,
            leases_fence_off_the_previous_holder,
            calls_are_remembered_and_started_once,
            quiet_calls_time_out_once,
            a_remembered_calls_events_outlive_the_recent_window,
            repeats_arriving_together_commit_once,
            a_calls_time_moves_only_when_an_event_says_so
        );
    };
    (@each $fresh:ident; $($name:ident),*) => {
        mod contract_suite {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some((_guard, store)) = super::$fresh().await else { return };
                    $crate::store::contract::$name(store).await;
                }
            )*
        }
    };
}
pub(crate) use contract_tests;
