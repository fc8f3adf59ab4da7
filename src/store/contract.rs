//! The behaviour every store backend must show, written once: each backend's tests run these
//! against a fresh store of its own, so SQLite and any later backend are held to one contract.

use std::sync::Arc;

use super::{now_ms, Accepted, Content, NewEvent, OnceKey, Queued, Store, StoreError, Transcript};

/// An event for `channels` whose JSON carries `text`.
pub fn event(channels: &[&str], text: &str) -> NewEvent {
    NewEvent {
        call_id: "c".into(),
        event_type: "message".into(),
        event: format!("{{\"text\":\"{text}\"}}"),
        channels: channels.iter().map(|c| c.to_string()).collect(),
    }
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
pub async fn queues_per_channel_in_order(store: &dyn Store) {
    accept(store, event(&["a", "b"], "1")).await.unwrap();
    accept(store, event(&["a"], "2")).await.unwrap();
    accept(store, event(&["a"], "3")).await.unwrap();
    let a = store.pending("a", 10).await.unwrap();
    assert_eq!(texts(&a), ["1", "2", "3"]);
    store.delivered(vec![a[0].id]).await.unwrap();
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
pub async fn parts_attempts_dead_letters_and_replays(store: &dyn Store) {
    accept(store, event(&["a"], "1")).await.unwrap();
    accept(store, event(&["a"], "2")).await.unwrap();
    let q = store.pending("a", 10).await.unwrap();
    store.failed_attempt(vec![q[0].id], "500 boom".into()).await.unwrap();
    store.failed_attempt(vec![q[0].id], "502 bad gateway".into()).await.unwrap();
    assert_eq!(store.pending("a", 1).await.unwrap()[0].attempts, 2);
    store.parts_delivered(q[0].id, 1).await.unwrap();
    let head = &store.pending("a", 1).await.unwrap()[0];
    assert_eq!((head.sent_parts, head.attempts), (1, 0), "the next part starts with a clean slate");
    store.failed_attempt(vec![q[0].id], "500 again".into()).await.unwrap();
    store.dead_letter(vec![q[0].id], "400 invalid_payload".into()).await.unwrap();
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
    store.dead_letter(ids, "gone".into()).await.unwrap();
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

/// A once-key refuses a second event carrying it until it expires; nothing of the second is kept.
pub async fn once_keys_refuse_repeats_until_they_expire(store: &dyn Store) {
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
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(store.accept(None, vec![key("short", 1)]).await.unwrap(), Accepted::New, "expired keys are forgotten");
}

/// A call's thread per channel is remembered until the time set after the call ended.
pub async fn threads_are_remembered_per_channel_until_forgotten(store: &dyn Store) {
    assert_eq!(store.thread("a", "call-1").await.unwrap(), None);
    store.set_thread("a", "call-1", "1700000000.000100".into()).await.unwrap();
    store.set_thread("b", "call-1", "thread-9".into()).await.unwrap();
    assert_eq!(store.thread("a", "call-1").await.unwrap().as_deref(), Some("1700000000.000100"));
    assert_eq!(store.thread("b", "call-1").await.unwrap().as_deref(), Some("thread-9"));
    assert_eq!(store.thread("a", "call-2").await.unwrap(), None);
    store.forget_call_at("a", "call-1", now_ms() + 60_000).await.unwrap();
    assert!(store.thread("a", "call-1").await.unwrap().is_some(), "kept until its time");
    store.forget_call_at("b", "call-1", now_ms() - 1).await.unwrap();
    assert_eq!(store.thread("b", "call-1").await.unwrap(), None, "forgotten once its time has come");
    assert!(store.thread("a", "call-1").await.unwrap().is_some());
}

/// A call's live transcript message is saved, replaced, and forgotten with the call.
pub async fn transcripts_are_saved_and_forgotten_with_the_call(store: &dyn Store) {
    assert_eq!(store.transcript("a", "call-1").await.unwrap(), None);
    let t = Transcript { message_id: "m1".into(), thread: Some("t1".into()), part: 1, lines: "[]".into() };
    store.set_transcript("a", "call-1", t.clone()).await.unwrap();
    assert_eq!(store.transcript("a", "call-1").await.unwrap(), Some(t));
    let next = Transcript { message_id: "m2".into(), thread: None, part: 2, lines: r#"[{"message":"x"}]"#.into() };
    store.set_transcript("a", "call-1", next.clone()).await.unwrap();
    assert_eq!(store.transcript("a", "call-1").await.unwrap(), Some(next));
    assert_eq!(store.transcript("b", "call-1").await.unwrap(), None);
    store.forget_call_at("a", "call-1", now_ms() - 1).await.unwrap();
    assert_eq!(store.transcript("a", "call-1").await.unwrap(), None);
}
