//! The PostgreSQL store against a real server: the shared contract, plus what only a shared
//! database brings (two relays racing for one once-key, schema set-up racing, wake-ups between relays).
//! Each test gets a schema of its own. Without a server the tests are skipped with a note,
//! except under CI (`CI=true`), where a missing server fails them.

use std::sync::Arc;

use super::*;
use crate::store::contract;
use crate::store::*;

/// The server tests use: `CALLRELAY_TEST_POSTGRES`, else the local one.
fn server_url() -> String {
    std::env::var("CALLRELAY_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh schema on the test server, as a URL whose connections use it; `None` (with a note)
/// when there is no server and this is not CI.
async fn fresh_schema() -> Option<String> {
    let base = server_url();
    let connected = tokio_postgres::connect(&base, tokio_postgres::NoTls).await;
    let (client, connection) = match connected {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipped: no PostgreSQL at {} ({e}); CI runs this", shown_url(&base));
            return None;
        }
        Err(e) => panic!("no PostgreSQL at {} under CI: {e}", shown_url(&base)),
    };
    tokio::spawn(connection);
    let schema = format!("t_{}", fastrand::u64(..));
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-csearch_path%3D{schema}"))
}

async fn fresh() -> Option<PgStore> {
    let url = fresh_schema().await?;
    Some(PgStore::connect(&url, false).await.unwrap())
}

/// A fresh store in a schema of its own for the contract; `None` without a server outside CI.
async fn fresh_contract() -> Option<((), Arc<dyn crate::store::Store>)> {
    Some(((), Arc::new(fresh().await?)))
}

contract::contract_tests!(fresh_contract);

#[tokio::test]
async fn two_relays_starting_together_and_racing_for_one_event_accept_it_once() {
    let Some(url) = fresh_schema().await else { return };
    // Both set up the schema at once: the advisory lock makes them take turns.
    let (a, b) = tokio::join!(PgStore::connect(&url, false), PgStore::connect(&url, false));
    let (a, b) = (Arc::new(a.unwrap()), Arc::new(b.unwrap()));
    for round in 0..20 {
        let key = || vec![OnceKey { key: format!("event:{round}"), expires_at_ms: now_ms() + 60_000 }];
        let (x, y) = tokio::join!(
            a.accept(Some(contract::event(&["a"], &round.to_string())), key()),
            b.accept(Some(contract::event(&["a"], &round.to_string())), key())
        );
        let new = [x.unwrap(), y.unwrap()].iter().filter(|o| **o == Accepted::New).count();
        assert_eq!(new, 1, "round {round}: the unique key decides, exactly one is new");
    }
    assert_eq!(a.pending("a", 100).await.unwrap().len(), 20);
}

#[tokio::test]
async fn a_commit_on_one_relay_wakes_the_others() {
    let Some(url) = fresh_schema().await else { return };
    let (listening, other) =
        (PgStore::connect(&url, true).await.unwrap(), PgStore::connect(&url, false).await.unwrap());
    let mut wakes = listening.wakeups().expect("a serving relay listens");
    // The listener connects in the background; commit until it hears one.
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            contract::accept(&other, contract::event(&["slack-alerts"], "x")).await.unwrap();
            if let Ok(Ok(channel)) = tokio::time::timeout(std::time::Duration::from_millis(200), wakes.recv()).await {
                return channel;
            }
        }
    })
    .await
    .expect("no NOTIFY heard in 10 s");
    assert_eq!(heard, "slack-alerts");
    // A replayed dead letter wakes the lanes too.
    let fence = contract::hold(&other, "slack-alerts").await;
    let ids = other.pending("slack-alerts", 1000).await.unwrap().iter().map(|q| q.id).collect();
    other.dead_letter(&fence, ids, "x".into()).await.unwrap();
    while wakes.try_recv().is_ok() {}
    other.requeue(other.dead_letters().await.unwrap()[0].id).await.unwrap();
    let channel = tokio::time::timeout(std::time::Duration::from_secs(5), wakes.recv()).await.unwrap().unwrap();
    assert_eq!(channel, "slack-alerts");
}

/// The server's snakeoil certificate (Debian's default for `ssl = on`): issued to `localhost`.
const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

async fn ssl_of(store: &PgStore) -> bool {
    let client = store.client().await.unwrap();
    client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn tls_to_the_database_follows_sslmode() {
    let Some(url) = fresh_schema().await else { return };
    if !std::path::Path::new(SNAKEOIL).exists() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI's PostgreSQL must serve TLS ({SNAKEOIL})");
        eprintln!("skipped: the test server has no {SNAKEOIL}; CI runs this");
        return;
    }
    let with = |url: &str, extra: &str| format!("{url}&{extra}");
    let plain = PgStore::connect(&url, false).await.unwrap();
    assert!(!ssl_of(&plain).await, "no sslmode: plaintext");
    let required = PgStore::connect(&with(&url, "sslmode=require"), false).await.unwrap();
    assert!(ssl_of(&required).await, "require: encrypted");
    let by_name = url.replace("@127.0.0.1:", "@localhost:");
    let full = PgStore::connect(&with(&by_name, &format!("sslmode=verify-full&sslrootcert={SNAKEOIL}")), false).await;
    assert!(ssl_of(&full.unwrap()).await, "verify-full: the certificate is for localhost and chains to the root");
    let wrong_name = PgStore::connect(&with(&url, &format!("sslmode=verify-full&sslrootcert={SNAKEOIL}")), false).await;
    let refused = wrong_name.err().expect("127.0.0.1 is not the certificate's name").to_string();
    assert!(refused.contains("certificate") && refused.contains("store.url"), "{refused}");
    let ca = PgStore::connect(&with(&url, &format!("sslmode=verify-ca&sslrootcert={SNAKEOIL}")), false).await;
    assert!(ssl_of(&ca.unwrap()).await, "verify-ca checks the chain, not the name");
    let untrusted = PgStore::connect(&with(&by_name, "sslmode=verify-full"), false).await;
    assert!(untrusted.is_err(), "a self-signed certificate is not among the Mozilla roots");
    let prefer = PgStore::connect(&with(&url, "sslmode=prefer"), false).await.err().unwrap().to_string();
    assert!(prefer.contains("sslmode `prefer` is not supported"), "{prefer}");
}

#[test]
fn the_password_never_shows() {
    assert_eq!(shown_url("postgres://relay:s3cret@db:5432/calls"), "postgres://relay:***@db:5432/calls");
}

/// The database turning read-only (a failover in progress, a replica promoted late) refuses
/// accepts, which the receiver answers 503; when it takes writes again, accepts recover by
/// themselves, on fresh connections.
#[tokio::test]
async fn a_read_only_database_refuses_accepts_and_they_recover_when_it_takes_writes_again() {
    let Some(url) = fresh_schema().await else { return };
    let (admin, connection) = tokio_postgres::connect(&server_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let role = format!("r_{}", fastrand::u64(..));
    let schema = url.rsplit("search_path%3D").next().unwrap().to_owned();
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; ALTER SCHEMA {schema} OWNER TO {role}; GRANT CONNECT ON DATABASE test TO {role}"
        ))
        .await
        .unwrap();
    let as_role = url.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    let store = PgStore::connect(&as_role, false).await.unwrap();
    contract::accept(&store, contract::event(&["a"], "before")).await.unwrap();
    // Read-only for new sessions; end the current ones so the pool reconnects.
    let flip = |read_only: bool| {
        format!(
            "ALTER ROLE {role} SET default_transaction_read_only = {read_only};
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
        )
    };
    admin.batch_execute(&flip(true)).await.unwrap();
    // The first tries may meet the ended connections; then every one meets a read-only session.
    let mut read_only = false;
    for _ in 0..20 {
        match store.accept(Some(contract::event(&["a"], "while read-only")), vec![]).await {
            Ok(_) => panic!("accepted while read-only"),
            Err(e) if e.to_string().contains("read-only") => {
                read_only = true;
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    assert!(read_only, "never refused for being read-only");
    admin.batch_execute(&flip(false)).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while store.accept(Some(contract::event(&["a"], "after")), vec![]).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "accepts never recovered");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let texts = contract::texts(&store.pending("a", 10).await.unwrap());
    assert_eq!(texts.first().map(String::as_str), Some("before"));
    assert_eq!(texts.last().map(String::as_str), Some("after"));
    assert!(!texts.iter().any(|t| t == "while read-only"), "nothing refused was kept: {texts:?}");
}

#[tokio::test]
async fn a_version_2_database_loses_its_unused_body_columns_and_keeps_its_queue() {
    let Some(url) = fresh_schema().await else { return };
    // A database as version 2 left it: the pre-version-2 body columns, and an entry queued.
    let store = PgStore::connect(&url, false).await.unwrap();
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    db.batch_execute(
        "ALTER TABLE queue ADD COLUMN body TEXT, ADD COLUMN coalesce BOOLEAN NOT NULL DEFAULT FALSE;
         ALTER TABLE dead_letters ADD COLUMN body TEXT; UPDATE callrelay_schema SET version = 2;",
    )
    .await
    .unwrap();
    contract::accept(&store, contract::event(&["a"], "kept")).await.unwrap();
    drop(store);

    let store = PgStore::connect(&url, false).await.unwrap();
    let columns: i64 = db
        .query_one(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema()
             AND ((table_name = 'queue' AND column_name IN ('body', 'coalesce'))
               OR (table_name = 'dead_letters' AND column_name = 'body'))",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(columns, 0, "the unused columns are dropped");
    let version: i32 = db.query_one("SELECT version FROM callrelay_schema", &[]).await.unwrap().get(0);
    assert_eq!(version, schema::VERSION);
    assert_eq!(contract::texts(&store.pending("a", 10).await.unwrap()), ["kept"], "the queue survives");
}
