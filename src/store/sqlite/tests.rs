//! The SQLite store on real files.

use std::sync::Arc;

use super::*;

fn delivery(channel: &str, body: &str) -> NewDelivery {
    NewDelivery {
        channel: channel.into(),
        call_id: "c".into(),
        event_type: "message".into(),
        body: body.into(),
        coalesce: true,
    }
}

trait AcceptAll {
    async fn accept_all(&self, d: Vec<NewDelivery>, dead: Vec<NewDeadLetter>) -> Result<(), StoreError>;
}

impl AcceptAll for SqliteStore {
    async fn accept_all(&self, d: Vec<NewDelivery>, dead: Vec<NewDeadLetter>) -> Result<(), StoreError> {
        assert_eq!(self.accept(d, dead, vec![]).await?, Accepted::New);
        Ok(())
    }
}

fn bodies(q: &[Queued]) -> Vec<&str> {
    q.iter().map(|d| d.body.as_str()).collect()
}

#[tokio::test]
async fn queues_per_channel_in_order_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/relay.db");
    {
        let store = SqliteStore::open(&path, None).unwrap();
        store.accept_all(vec![delivery("a", "1"), delivery("b", "x"), delivery("a", "2")], vec![]).await.unwrap();
        store.accept_all(vec![delivery("a", "3")], vec![]).await.unwrap();
        let a = store.pending("a", 10).await.unwrap();
        assert_eq!(bodies(&a), ["1", "2", "3"]);
        store.delivered(vec![a[0].id]).await.unwrap();
    }
    let store = SqliteStore::open(&path, None).unwrap();
    assert_eq!(bodies(&store.pending("a", 10).await.unwrap()), ["2", "3"]);
    assert_eq!(bodies(&store.pending("b", 10).await.unwrap()), ["x"]);
    assert_eq!(bodies(&store.pending("a", 1).await.unwrap()), ["2"]);
    let depths = store.depths().await.unwrap();
    assert_eq!(depths.iter().map(|d| (d.channel.as_str(), d.pending)).collect::<Vec<_>>(), [("a", 2), ("b", 1)]);
}

#[tokio::test]
async fn failed_attempts_dead_letters_requeue_and_purge() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db"), None).unwrap();
    store.accept_all(vec![delivery("a", "1"), delivery("a", "2")], vec![]).await.unwrap();
    let q = store.pending("a", 10).await.unwrap();
    store.failed_attempt(vec![q[0].id], "500 boom".into()).await.unwrap();
    store.failed_attempt(vec![q[0].id], "502 bad gateway".into()).await.unwrap();
    assert_eq!(store.pending("a", 1).await.unwrap()[0].attempts, 2);
    store.dead_letter(vec![q[0].id], "400 invalid_payload".into()).await.unwrap();
    assert_eq!(bodies(&store.pending("a", 10).await.unwrap()), ["2"]);
    let dl = store.dead_letters().await.unwrap();
    assert_eq!((dl[0].body.as_deref(), dl[0].reason.as_str(), dl[0].attempts), (Some("1"), "400 invalid_payload", 2));

    store.requeue(dl[0].id, vec!["1-fixed".into()]).await.unwrap();
    assert_eq!(bodies(&store.pending("a", 10).await.unwrap()), ["2", "1-fixed"], "a replay joins the end of the queue");
    assert!(store.dead_letters().await.unwrap().is_empty());
    assert_eq!(store.requeue(dl[0].id, vec![]).await, Err(StoreError::NoSuchDeadLetter(dl[0].id)));

    let render_failure = NewDeadLetter {
        channel: "a".into(),
        call_id: "c".into(),
        event_type: "message".into(),
        body: None,
        event: Some("{}".into()),
        reason: "template".into(),
    };
    store.accept_all(vec![], vec![render_failure.clone(), render_failure]).await.unwrap();
    assert_eq!(store.purge(Some(0)).await.unwrap(), 0, "none failed before the epoch");
    assert_eq!(store.purge(None).await.unwrap(), 2);
}

#[tokio::test]
async fn concurrent_accepts_all_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db"), None).unwrap());
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.accept_all(vec![delivery("a", &i.to_string())], vec![]).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.pending("a", 1000).await.unwrap().len(), 200);
}

#[tokio::test]
async fn a_full_store_refuses_then_recovers_when_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db"), Some(256 * 1024)).unwrap();
    let big = "x".repeat(16 * 1024);
    let mut accepted = 0;
    let err = loop {
        match store.accept_all(vec![delivery("a", &big)], vec![]).await {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 1000, "max_bytes was not enforced");
    };
    assert_eq!(err, StoreError::Full);
    assert_eq!(store.ping(big.len()).await, Err(StoreError::Full), "readiness sees what accepting saw");
    let queued = store.pending("a", 1000).await.unwrap();
    assert_eq!(queued.len(), accepted, "a refused accept left nothing behind");
    store.delivered(queued.iter().map(|q| q.id).collect()).await.unwrap();
    store.accept_all(vec![delivery("a", &big)], vec![]).await.unwrap();
    store.ping(big.len()).await.unwrap();
}

#[test]
fn an_unusable_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let err = SqliteStore::open(&file.join("relay.db"), None).err().unwrap().to_string();
    assert!(err.contains("plain-file") && err.contains("store.path"), "{err}");
}

#[tokio::test]
async fn once_keys_refuse_a_second_event_until_they_expire_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let key = |k: &str, ms: i64| OnceKey { key: k.into(), expires_at_ms: now_ms() + ms };
    {
        let store = SqliteStore::open(&path, None).unwrap();
        assert_eq!(
            store.accept(vec![delivery("a", "1")], vec![], vec![key("e1", 60_000)]).await.unwrap(),
            Accepted::New
        );
        assert_eq!(
            store.accept(vec![delivery("a", "1 again")], vec![], vec![key("e1", 60_000)]).await.unwrap(),
            Accepted::Seen("e1".into())
        );
        assert_eq!(store.accept(vec![], vec![], vec![key("short", 1)]).await.unwrap(), Accepted::New);
    }
    let store = SqliteStore::open(&path, None).unwrap();
    assert_eq!(
        store.accept(vec![delivery("a", "x")], vec![], vec![key("e2", 60_000), key("e1", 60_000)]).await.unwrap(),
        Accepted::Seen("e1".into())
    );
    assert_eq!(bodies(&store.pending("a", 10).await.unwrap()), ["1"], "a duplicate writes nothing");
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(
        store.accept(vec![], vec![], vec![key("short", 1)]).await.unwrap(),
        Accepted::New,
        "expired keys are forgotten"
    );
}
