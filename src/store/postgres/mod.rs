//! The PostgreSQL store, chosen by `store.url`: the same tables and behaviour as the SQLite store,
//! on a database server several relays share. Accepts are group-committed by one writer task
//! (everything waiting goes in one transaction of a fixed number of statements); the rest runs
//! on a small connection pool. A once-key is claimed by `INSERT … ON CONFLICT DO NOTHING`, so the
//! database's unique key, not a check-then-insert, decides which of two identical events is new.
//!
//! Each channel's lane is leased (`lanes`: owner, expiry by the database's clock, fencing token);
//! every write about a channel's queue first locks its lease row and checks the token, so a relay
//! that lost the lease cannot overwrite the new holder's work. Commits that queue entries send a
//! `NOTIFY` so the holder wakes at once; lanes poll as well, so it also works where LISTEN does
//! not (PgBouncer in transaction mode).

mod calls;
mod intake;
mod leases;
mod queue;
mod schema;
mod stats;
mod tls;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Transaction};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_postgres::AsyncMessage;

use super::{now_ms, Accepted, Fence, NewEvent, OnceKey, StoreError};
use tls::Tls;

/// Most accepts committed together.
const MAX_BATCH: usize = 1024;
/// Pooled connections (the lanes, `/readyz`, `/metrics`, the CLI).
const POOL_SIZE: usize = 8;
/// Longest wait to connect to the database, or for a pooled connection.
const IO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The NOTIFY channel that carries `schema:channel` for each channel with new entries.
const WAKE_CHANNEL: &str = "callrelay_queue";
/// The database's clock in Unix milliseconds: lease expiries are compared by one clock.
const DB_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

struct AcceptJob {
    event: Option<NewEvent>,
    once: Vec<OnceKey>,
    reply: oneshot::Sender<Result<Accepted, StoreError>>,
}

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool,
    accepts: mpsc::Sender<AcceptJob>,
    /// Wake-ups from other relays' commits (when this relay serves).
    wakes: Option<broadcast::Sender<String>>,
}

fn failed(e: impl std::error::Error) -> StoreError {
    StoreError::Failed(with_causes(&e))
}

fn classify(e: &tokio_postgres::Error) -> StoreError {
    match e.code().map(|c| c.code()) {
        // disk_full, insufficient_resources, out_of_memory
        Some("53100" | "53000" | "53200") => StoreError::Full,
        _ => failed(e),
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://…`, TLS as its `sslmode` says), creating or upgrading the
    /// tables. `serving`: also listen for other relays' wake-ups.
    pub async fn connect(url: &str, serving: bool) -> Result<PgStore, StoreError> {
        let open = |message: String| StoreError::Open { key: "store.url", path: shown_url(url), message };
        let (plain_url, tls) = tls::from_url(url).map_err(open)?;
        let mut config: tokio_postgres::Config =
            plain_url.parse().map_err(|e| open(format!("not a PostgreSQL URL: {e}")))?;
        // A database that stops answering must turn into 503s within seconds, not hang intake.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(IO_TIMEOUT);
        }
        config.keepalives_idle(IO_TIMEOUT);
        #[cfg(target_os = "linux")]
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(IO_TIMEOUT * 2);
        }
        let recycling = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = match &tls {
            Tls::Off => Manager::from_config(config.clone(), tokio_postgres::NoTls, recycling),
            Tls::On(tls) => Manager::from_config(config.clone(), tls.clone(), recycling),
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(IO_TIMEOUT))
            .create_timeout(Some(IO_TIMEOUT))
            .recycle_timeout(Some(IO_TIMEOUT))
            .build()
            .map_err(|e| open(e.to_string()))?;
        let mut client = pool.get().await.map_err(|e| open(with_causes(&e)))?;
        schema::upgrade(&mut client).await.map_err(open)?;
        let schema: String =
            client.query_one("SELECT current_schema()", &[]).await.map_err(|e| open(e.to_string()))?.get(0);
        let wakes = serving.then(|| {
            let (wakes, _) = broadcast::channel(1024);
            tokio::spawn(listen(config, tls, format!("{schema}:"), wakes.clone()));
            wakes
        });
        let (accepts, jobs) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(writer(pool.clone(), jobs));
        Ok(PgStore { pool, accepts, wakes })
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(failed)
    }
}

/// An error with its causes (a failed TLS handshake says why only in its source).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// Begins a transaction that holds `fence`'s lease row (so no takeover commits meanwhile), or
/// refuses when the lease has moved on.
async fn fenced<'a>(client: &'a mut Object, fence: &Fence) -> Result<Transaction<'a>, StoreError> {
    let tx = client.transaction().await.map_err(|e| classify(&e))?;
    let held = tx
        .query_opt("SELECT 1 FROM lanes WHERE channel = $1 AND token = $2 FOR SHARE", &[&fence.channel, &fence.token])
        .await
        .map_err(|e| classify(&e))?;
    match held {
        Some(_) => Ok(tx),
        None => Err(StoreError::Fenced(fence.channel.clone())),
    }
}

/// Keeps a `LISTEN` connection open (reconnecting after failures) and passes on the channels
/// of this schema that other relays queued entries for.
async fn listen(config: tokio_postgres::Config, tls: Tls, prefix: String, wakes: broadcast::Sender<String>) {
    loop {
        let connected = match &tls {
            Tls::Off => listen_once(&config, tokio_postgres::NoTls, &prefix, &wakes).await,
            Tls::On(tls) => listen_once(&config, tls.clone(), &prefix, &wakes).await,
        };
        if let Err(e) = connected {
            tracing::debug!(error = %e, "The wake-up listener lost its connection; lanes poll meanwhile.");
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

async fn listen_once<T>(
    config: &tokio_postgres::Config,
    tls: T,
    prefix: &str,
    wakes: &broadcast::Sender<String>,
) -> Result<(), tokio_postgres::Error>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = config.connect(tls).await?;
    let (notes, mut received) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = notes.send(n.payload().to_owned());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    client.batch_execute(&format!("LISTEN {WAKE_CHANNEL}")).await?;
    while let Some(payload) = received.recv().await {
        if let Some(channel) = payload.strip_prefix(prefix) {
            let _ = wakes.send(channel.to_owned());
        }
    }
    driver.abort();
    Ok(())
}

/// `url` with its password hidden, for messages.
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "the configured store.url".into(),
    }
}

/// Group commit: every accept waiting goes into one transaction.
async fn writer(pool: Pool, mut jobs: mpsc::Receiver<AcceptJob>) {
    let mut purged_at = 0;
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Expired once-keys are deleted at most once a second (a claim treats them as absent).
        let now = now_ms();
        let purge = now - purged_at >= 1000;
        if purge {
            purged_at = now;
        }
        match commit(&pool, &batch, purge).await {
            Ok(outcomes) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            Err(e) => {
                for job in batch {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Runs `sql` as a statement prepared once per connection (an unprepared one costs a second
/// round trip each time).
async fn run<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query(&statement, params).await
}

/// One transaction for the whole batch, in a fixed number of round trips whatever its size
/// (per-event statements made PostgreSQL intake round-trip bound), each statement prepared once
/// and the independent ones sent together (tokio-postgres pipelines the queries in flight on one
/// connection, in the order they are first polled; statements are prepared before they are
/// joined, so none waits for its preparation behind a later one): `BEGIN` with the claim of
/// every once-key (deciding per event, and releasing the keys of events found to be repeats);
/// remembering the calls with drawing ids in acceptance order; then one statement for the
/// events, their queue entries, their recent rows and the wake-ups, sent with `COMMIT`. Two
/// round trips a batch when none of its events is a repeat (the calls and the ids ride with the
/// claim; see [`attempt`]); a batch with a repeat rolls back and takes up to five.
async fn commit(
    pool: &Pool,
    batch: &[AcceptJob],
    purge: bool,
) -> Result<Vec<Result<Accepted, StoreError>>, StoreError> {
    let client = pool.get().await.map_err(failed)?;
    match commit_on(&client, batch, purge).await {
        Ok(outcomes) => Ok(outcomes),
        Err(e) => {
            // The connection goes back to the pool: leave no transaction open on it.
            if client.batch_execute("ROLLBACK").await.is_err() {
                let _ = Object::take(client);
            }
            Err(classify(&e))
        }
    }
}

async fn commit_on<C: GenericClient>(
    client: &C,
    batch: &[AcceptJob],
    purge: bool,
) -> Result<Vec<Result<Accepted, StoreError>>, tokio_postgres::Error> {
    if let Some(done) = attempt(client, batch, purge, true).await? {
        return Ok(done);
    }
    client.batch_execute("ROLLBACK").await?;
    Ok(attempt(client, batch, purge, false).await?.expect("a careful attempt finishes"))
}

/// One try at committing `batch`. `optimistic`: takes every event for new and sends the calls'
/// upsert and the id draw with the key claim (one round trip less); when the claim shows a
/// repeat (rare: a resend), gives up (`None`, the transaction left open for the caller to roll
/// back) so the careful attempt decides first and remembers only the new events.
async fn attempt<C: GenericClient>(
    client: &C,
    batch: &[AcceptJob],
    purge: bool,
    optimistic: bool,
) -> Result<Option<Vec<Result<Accepted, StoreError>>>, tokio_postgres::Error> {
    let now = now_ms();
    let mut outcomes: Vec<Accepted> = vec![Accepted::New; batch.len()];
    // Each key once (two identical events in one batch: the first takes it), longest expiry.
    let mut wanted: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for k in batch.iter().flat_map(|j| &j.once) {
        let expiry = wanted.entry(k.key.as_str()).or_insert(k.expires_at_ms);
        *expiry = (*expiry).max(k.expires_at_ms);
    }
    let (keys, expiries): (Vec<&str>, Vec<i64>) = wanted.into_iter().unzip();
    let claim = client.prepare_cached(CLAIM_SQL).await?;
    let purge_expired = client.prepare_cached("DELETE FROM seen WHERE expires_at < $1").await?;
    // Prepared now, so that in the pipeline below the upsert is sent before the id draw (ids are
    // drawn after the call's row lock is taken; see `remember`).
    client.prepare_cached(REMEMBER_SQL).await?;
    client.prepare_cached(DRAW_IDS_SQL).await?;
    let all: Vec<&NewEvent> = batch.iter().filter_map(|j| j.event.as_ref()).collect();
    let (_, _, claimed, early) = tokio::try_join!(
        client.batch_execute("BEGIN"),
        async {
            match purge {
                true => client.query(&purge_expired, &[&now]).await,
                false => Ok(Vec::new()),
            }
        },
        async {
            match keys.is_empty() {
                true => Ok(Vec::new()),
                false => client.query(&claim, &[&keys, &expiries, &now]).await,
            }
        },
        async {
            match optimistic {
                true => tokio::try_join!(remember(client, &all, now), draw_ids(client, most_ids(&all))).map(Some),
                false => Ok(None),
            }
        }
    )?;
    if !keys.is_empty() {
        let claimed: std::collections::HashSet<String> = claimed.iter().map(|r| r.get(0)).collect();
        // An event is new when this batch claimed all its keys and no earlier event in it did.
        let mut taken = std::collections::HashSet::new();
        for (job, outcome) in batch.iter().zip(outcomes.iter_mut()) {
            match job.once.iter().find(|k| !claimed.contains(&k.key) || taken.contains(k.key.as_str())) {
                Some(repeat) => *outcome = Accepted::Seen(repeat.key.clone()),
                None => taken.extend(job.once.iter().map(|k| k.key.as_str())),
            }
        }
        if optimistic && outcomes.iter().any(|o| *o != Accepted::New) {
            return Ok(None);
        }
        let release: Vec<&str> = claimed.iter().map(String::as_str).filter(|k| !taken.contains(k)).collect();
        if !release.is_empty() {
            run(client, "DELETE FROM seen WHERE key = ANY($1)", &[&release]).await?;
        }
    }
    let accepted: Vec<&NewEvent> = batch
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == Accepted::New)
        .filter_map(|(j, _)| j.event.as_ref())
        .collect();
    let (mut first, mut ids) = match early {
        Some(done) => done,
        None => tokio::try_join!(remember(client, &accepted, now), draw_ids(client, most_ids(&accepted)))?,
    };
    ids.reverse();
    // Each call's `call_started` goes ahead of the first of its events when the call is new.
    let mut events: Vec<(&NewEvent, i64)> = Vec::with_capacity(accepted.len());
    for e in accepted {
        if let Some(started) = e.started.as_deref().filter(|_| first.remove(&e.call_id)) {
            if stored(started) {
                events.push((started, ids.pop().expect("an id for each event")));
            }
        }
        if stored(e) {
            events.push((e, ids.pop().expect("an id for each event")));
        }
    }
    insert_with_ids(client, &events, now, true).await?;
    Ok(Some(outcomes.into_iter().map(Ok).collect()))
}

/// Whether an event is written at all: some channel takes it, or the console keeps it.
fn stored(e: &NewEvent) -> bool {
    !e.channels.is_empty() || e.recent
}

/// Ids for every event of `events` that may be stored, with its call's start (used only if the
/// call is new: an id drawn and not used leaves a gap, which nothing minds).
fn most_ids(events: &[&NewEvent]) -> usize {
    events.iter().filter(|e| stored(e)).count()
        + events.iter().filter_map(|e| e.started.as_deref()).filter(|e| stored(e)).count()
}

/// Claims once-keys: new ones, and known ones that have expired; returns the keys claimed.
const CLAIM_SQL: &str = "INSERT INTO seen (key, expires_at) SELECT * FROM unnest($1::text[], $2::bigint[])
     ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE seen.expires_at < $3
     RETURNING key";

/// Draws `$1` event ids.
/// The sequence is looked up once per statement (a scalar subquery), not once per id:
/// `pg_get_serial_sequence` is a catalog lookup PostgreSQL does not fold into a constant.
const DRAW_IDS_SQL: &str = "SELECT nextval((SELECT pg_get_serial_sequence('events', 'id'))::regclass)
     FROM generate_series(1, $1::bigint)";

/// `n` event ids, ascending.
async fn draw_ids<C: GenericClient>(tx: &C, n: usize) -> Result<Vec<i64>, tokio_postgres::Error> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let rows = run(tx, DRAW_IDS_SQL, &[&(n as i64)]).await?;
    let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Commits events (those some channel takes or the console keeps) with ids drawn in the given
/// order; see [`insert_with_ids`].
async fn insert_events(tx: &Transaction<'_>, all: &[&NewEvent], now: i64) -> Result<(), tokio_postgres::Error> {
    let stored: Vec<&NewEvent> = all.iter().copied().filter(|e| !e.channels.is_empty() || e.recent).collect();
    let ids = draw_ids(tx, stored.len()).await?;
    let events: Vec<(&NewEvent, i64)> = stored.into_iter().zip(ids).collect();
    insert_with_ids(tx, &events, now, false).await
}

/// Writes events with their ids (drawn in acceptance order): those some channel takes with
/// their queue entries in that order, and the recent rows of those kept (routed or not: a call's
/// page shows every utterance), then the wake-ups of their channels: one statement
/// ([`INSERT_SQL`]), sent together with `COMMIT` when `commit` (see [`commit`]).
async fn insert_with_ids<C: GenericClient>(
    c: &C,
    all: &[(&NewEvent, i64)],
    now: i64,
    commit: bool,
) -> Result<(), tokio_postgres::Error> {
    let kept: Vec<(&NewEvent, i64)> = all.iter().filter(|(e, _)| e.recent).copied().collect();
    let (events, ids): (Vec<&NewEvent>, Vec<i64>) = all.iter().filter(|(e, _)| !e.channels.is_empty()).copied().unzip();
    let calls: Vec<String> = events.iter().map(|e| clean(&e.call_id)).collect();
    let types: Vec<String> = events.iter().map(|e| clean(&e.event_type)).collect();
    let bodies: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    let (channels, owners): (Vec<&str>, Vec<i64>) =
        events.iter().zip(&ids).flat_map(|(e, id)| e.channels.iter().map(move |c| (c.as_str(), *id))).unzip();
    let list = |items: &[String]| serde_json::to_string(items).expect("strings serialise");
    let routes: Vec<String> = kept.iter().map(|(e, _)| list(&e.routes)).collect();
    let routed: Vec<String> = kept.iter().map(|(e, _)| list(&e.channels)).collect();
    let (kept_ids, kept_calls, kept_types): (Vec<i64>, Vec<String>, Vec<String>) = (
        kept.iter().map(|(_, i)| *i).collect(),
        kept.iter().map(|(e, _)| clean(&e.call_id)).collect(),
        kept.iter().map(|(e, _)| clean(&e.event_type)).collect(),
    );
    let shown: Vec<Option<&str>> = kept.iter().map(|(e, _)| e.shown.as_deref()).collect();
    let mut woken = channels.clone();
    woken.sort_unstable();
    woken.dedup();
    let insert = c.prepare_cached(&INSERT_SQL).await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 14] = [
        &ids,
        &calls,
        &types,
        &bodies,
        &now,
        &channels,
        &owners,
        &kept_ids,
        &kept_calls,
        &kept_types,
        &routes,
        &routed,
        &shown,
        &woken,
    ];
    // Sent together, `COMMIT` last.
    tokio::try_join!(c.query(&insert, &params), async {
        match commit {
            true => c.batch_execute("COMMIT").await,
            false => Ok(()),
        }
    })?;
    Ok(())
}

/// [`insert_with_ids`]'s one statement: the events, their queue entries in order, the recent
/// rows, and the wake-ups of the channels (one statement, not four: each statement costs
/// PostgreSQL a bind, a plan lookup and an executor start whatever its rows).
static INSERT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH e AS (INSERT INTO events (id, call_id, event_type, event, accepted_at)
             SELECT i, c, t, e, $5 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS u(i, c, t, e)),
         q AS (INSERT INTO queue (channel, event_id)
             SELECT c, e FROM unnest($6::text[], $7::bigint[]) WITH ORDINALITY AS u(c, e, n) ORDER BY n),
         r AS (INSERT INTO recent (event_id, call_id, event_type, routes, channels, accepted_at, shown)
             SELECT i, c, t, r, ch, $5, e
             FROM unnest($8::bigint[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
                 AS u(i, c, t, r, ch, e))
         {}",
        notify_sql("$14")
    )
});

/// Wakes the listening relays' lanes of the channels in the text array `param` (at commit).
fn notify_sql(param: &str) -> String {
    format!("SELECT pg_notify('{WAKE_CHANNEL}', current_schema() || ':' || c) FROM unnest({param}::text[]) c")
}

/// PostgreSQL text cannot hold NUL; the event JSON escapes it, other fields are raw.
fn clean(s: &str) -> String {
    s.replace('\0', "\u{fffd}")
}

/// Remembers what a batch of events tells about their calls, in one statement (the rows of one
/// call merged in acceptance order; written in call order, so two relays lock calls alike and
/// cannot deadlock). Returns the calls this batch is the first to see.
async fn remember<C: GenericClient>(
    tx: &C,
    events: &[&NewEvent],
    now: i64,
) -> Result<std::collections::HashSet<String>, tokio_postgres::Error> {
    let mut calls: std::collections::BTreeMap<String, crate::store::CallNote> = std::collections::BTreeMap::new();
    let mut counts: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for e in events {
        let Some(note) = &e.call else { continue };
        let merged = calls.entry(clean(&e.call_id)).or_default();
        merged.agent_id = merged.agent_id.take().or_else(|| note.agent_id.as_deref().map(clean));
        merged.user_name = merged.user_name.take().or_else(|| note.user_name.as_deref().map(clean));
        merged.call_data = merged.call_data.take().or_else(|| note.call_data.clone());
        merged.ended |= note.ended;
        merged.touch |= note.touch || note.ended;
        *counts.entry(clean(&e.call_id)).or_default() += i64::from(note.utterance);
    }
    if calls.is_empty() {
        return Ok(Default::default());
    }
    let ids: Vec<&str> = calls.keys().map(String::as_str).collect();
    let agents: Vec<Option<&str>> = calls.values().map(|n| n.agent_id.as_deref()).collect();
    let names: Vec<Option<&str>> = calls.values().map(|n| n.user_name.as_deref()).collect();
    let data: Vec<Option<&str>> = calls.values().map(|n| n.call_data.as_deref()).collect();
    let utterances: Vec<i64> = calls.keys().map(|c| counts[c]).collect();
    let ended: Vec<bool> = calls.values().map(|n| n.ended).collect();
    let touched: Vec<bool> = calls.values().map(|n| n.touch).collect();
    let rows = run(tx, REMEMBER_SQL, &[&ids, &agents, &names, &data, &utterances, &ended, &now, &touched]).await?;
    Ok(rows.iter().filter(|r| r.get::<_, bool>(1)).map(|r| r.get(0)).collect())
}

/// The calls' batch upsert of [`remember`]; returns each call and whether this made its row.
///
/// A call's last-event time moves only when one of its events says so (`$8`, the note's
/// `touch`: at most every so often for a busy call), as on SQLite: `last_at` is indexed (the
/// open calls' index), so moving it makes every update a new index entry in both of the table's
/// indexes, while an update that leaves it alone is a heap-only (HOT) update. The flag reaches
/// the update through the proposed row: a touched call proposes `last_at` = `first_at` = now,
/// an untouched one a millisecond less (which only a row new to the database keeps).
const REMEMBER_SQL: &str =
    "INSERT INTO calls (call_id, agent_id, user_name, call_data, first_at, last_at, utterances, ended_at)
             SELECT c, a, u, d, $7::bigint, CASE WHEN t THEN $7::bigint ELSE $7::bigint - 1 END, n,
                 CASE WHEN e THEN $7::bigint END
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bool[], $8::bool[])
                 AS x(c, a, u, d, n, e, t)
             ORDER BY c
             ON CONFLICT (call_id) DO UPDATE SET
                 agent_id = COALESCE(calls.agent_id, excluded.agent_id),
                 user_name = COALESCE(calls.user_name, excluded.user_name),
                 call_data = COALESCE(calls.call_data, excluded.call_data),
                 last_at = CASE WHEN excluded.last_at = excluded.first_at
                     THEN GREATEST(calls.last_at, excluded.last_at) ELSE calls.last_at END,
                 utterances = calls.utterances + excluded.utterances,
                 ended_at = COALESCE(calls.ended_at, excluded.ended_at)
             RETURNING call_id, (xmax = 0)";

/// Tells every listening relay (at commit) that `channels` have new entries.
async fn wake<C: GenericClient>(tx: &C, channels: &[&str]) -> Result<(), tokio_postgres::Error> {
    if channels.is_empty() {
        return Ok(());
    }
    run(tx, &notify_sql("$1"), &[&channels]).await.map(|_| ())
}

/// Records what became of queue entries' posts, for the console (only for events it still keeps).
async fn note_outcome(
    tx: &tokio_postgres::Transaction<'_>,
    ids: &[i64],
    status: &str,
    answer: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO outcomes (event_id, channel, status, attempts, answer, at)
         SELECT q.event_id, q.channel, $2, q.attempts, $3, $4 FROM queue q
         WHERE q.id = ANY($1) AND EXISTS (SELECT 1 FROM recent r WHERE r.event_id = q.event_id)
         ON CONFLICT (event_id, channel) DO UPDATE SET status = excluded.status,
             attempts = excluded.attempts, answer = excluded.answer, at = excluded.at",
        &[&ids, &status, &answer, &now_ms()],
    )
    .await
    .map(|_| ())
}

/// Deletes queue entries, then those entries' events that no entry points at any more. Not the
/// SQLite store's range rule: here other connections commit while this runs (the writer, the
/// CLI), ids from two sequences can interleave, and a statement sees rows committed since the
/// previous one, so only events checked against the queue are deleted. (Two lanes removing the
/// last two entries of one event at once may each see the other's and leave the event behind:
/// a row kept, never one lost.)
async fn remove_entries(tx: &tokio_postgres::Transaction<'_>, ids: &[i64]) -> Result<(), tokio_postgres::Error> {
    let events: Vec<i64> = tx
        .query("DELETE FROM queue WHERE id = ANY($1) RETURNING event_id", &[&ids])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    tx.execute(
        "DELETE FROM events e WHERE e.id = ANY($1) AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.event_id = e.id)",
        &[&events],
    )
    .await?;
    Ok(())
}

impl PgStore {
    /// Sets `set` on the fence's lease row while the token is current (`$3` is `value`).
    async fn lane_update(&self, fence: &Fence, set: &str, value: Option<String>) -> Result<(), StoreError> {
        let client = self.client().await?;
        let sql = format!("UPDATE lanes SET {set} WHERE channel = $1 AND token = $2");
        let changed = match &value {
            Some(v) => client.execute(&sql, &[&fence.channel, &fence.token, v]).await,
            None => client.execute(&sql, &[&fence.channel, &fence.token]).await,
        }
        .map_err(|e| classify(&e))?;
        match changed {
            0 => Err(StoreError::Fenced(fence.channel.clone())),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
