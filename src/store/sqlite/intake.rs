//! Intake: committing accepted events and their once-keys, and whether a write would succeed now. (the SQLite store)

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{params, ToSql};

use super::*;
use crate::store::{now_ms, Accepted, CallNote, Intake, NewEvent, OnceKey, StoreError};

#[async_trait]
impl Intake for SqliteStore {
    async fn accept(&self, event: Option<NewEvent>, once: Vec<OnceKey>) -> Result<Accepted, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let accepting = Accepting { event, once, out: None, purged: self.purged_at.clone() };
        let job = AcceptJob { accepting, reply: Some(reply) };
        let stopped = || StoreError::Failed("the store's writer has stopped".into());
        self.jobs.send(Box::new(job)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn ping(&self, bytes: usize) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.execute("INSERT INTO readiness VALUES (zeroblob(?1))", params![bytes as i64])?;
            conn.execute("DELETE FROM readiness", []).map(|_| ())
        })
        .await
    }
}

/// One accept waiting for the writer: its event and once-keys, and what became of it. The writer
/// commits the accepts queued next to each other with [`accept_many`].
pub(super) struct Accepting {
    event: Option<NewEvent>,
    once: Vec<OnceKey>,
    out: Option<Accepted>,
    /// When expired once-keys were last deleted (the store's, shared by its accepts).
    purged: Arc<AtomicI64>,
}

struct AcceptJob {
    accepting: Accepting,
    reply: Option<tokio::sync::oneshot::Sender<Result<Accepted, StoreError>>>,
}

impl Job for AcceptJob {
    fn run(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        accept_many(conn, &mut [&mut self.accepting])
    }

    fn finish(&mut self, outcome: Result<(), StoreError>) {
        let out =
            outcome.and_then(|()| self.accepting.out.take().ok_or_else(|| StoreError::Failed("no result".into())));
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(out);
        }
    }

    fn accepting(&mut self) -> Option<&mut Accepting> {
        Some(&mut self.accepting)
    }
}

/// Commits a run of accepts with a statement per table for all of them, not per event: their
/// once-keys claimed in one upsert (an event one of whose keys is already remembered, or taken
/// by an earlier event of the run, is `Seen` and keeps none), what each tells its call, then the
/// accepted events, queue entries and recent rows ([`insert_events`]). Sets each one's `out`; on
/// an error the caller rolls the run back and commits its accepts one by one.
pub(super) fn accept_many(conn: &Connection, batch: &mut [&mut Accepting]) -> rusqlite::Result<()> {
    let now = now_ms();
    if let Some(first) = batch.iter().find(|a| !a.once.is_empty()) {
        purge_expired_keys(conn, now, &first.purged)?;
        let outs = claim(conn, batch, now)?;
        batch.iter_mut().zip(outs).for_each(|(a, out)| a.out = Some(out));
    } else {
        batch.iter_mut().for_each(|a| a.out = Some(Accepted::New));
    }
    let mut rows = Vec::with_capacity(batch.len());
    for a in batch.iter() {
        let Some(e) = a.event.as_ref().filter(|_| a.out == Some(Accepted::New)) else { continue };
        let first = match &e.call {
            Some(note) => remember(conn, &e.call_id, note, now, e.started.is_some())?,
            None => false,
        };
        if let Some(started) = e.started.as_deref().filter(|_| first) {
            rows.push(started);
        }
        rows.push(e);
    }
    insert_events(conn, &rows, now)
}

/// Claims the run's once-keys in one upsert (a key new, or known but expired, is taken) and says
/// of each accept whether it is new; frees the keys claimed for accepts that turned out repeats.
fn claim(conn: &Connection, batch: &[&mut Accepting], now: i64) -> rusqlite::Result<Vec<Accepted>> {
    let mut unique = HashSet::new();
    let keys: Vec<&OnceKey> = batch.iter().flat_map(|a| &a.once).filter(|k| unique.insert(k.key.as_str())).collect();
    let values: Vec<&dyn ToSql> = keys.iter().flat_map(|k| [&k.key as &dyn ToSql, &k.expires_at_ms]).collect();
    let mut claimed = HashSet::new();
    insert_rows(
        conn,
        "INSERT INTO seen (key, expires_at)",
        2,
        &values,
        " ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE seen.expires_at < ? RETURNING key",
        &[&now],
        |row| {
            claimed.insert(row.get::<_, String>(0)?);
            Ok(())
        },
    )?;
    let mut kept: HashSet<&str> = HashSet::new();
    let outs = batch
        .iter()
        .map(|a| match a.once.iter().find(|k| !claimed.contains(&k.key) || kept.contains(k.key.as_str())) {
            Some(k) => Accepted::Seen(k.key.clone()),
            None => {
                kept.extend(a.once.iter().map(|k| k.key.as_str()));
                Accepted::New
            }
        })
        .collect();
    let mut free = conn.prepare_cached("DELETE FROM seen WHERE key = ?1")?;
    for key in claimed.iter().filter(|k| !kept.contains(k.as_str())) {
        free.execute(params![key])?;
    }
    Ok(outs)
}

/// Forgets expired once-keys, at most once a second (claiming a key treats an expired one as
/// absent, so this only bounds the table; deleting per event cost a statement per event).
fn purge_expired_keys(conn: &Connection, now: i64, last: &AtomicI64) -> rusqlite::Result<()> {
    if now - last.load(Ordering::Relaxed) >= 1000 {
        last.store(now, Ordering::Relaxed);
        conn.prepare_cached("DELETE FROM seen WHERE expires_at < ?1")?.execute(params![now])?;
    }
    Ok(())
}

/// Commits an event and its queue entries (when a channel takes it), and its recent row when it
/// is kept; see [`insert_events`].
pub(super) fn insert_event(conn: &Connection, e: &NewEvent, now: i64) -> rusqlite::Result<()> {
    insert_events(conn, &[e], now)
}

/// Commits events in order, each with its queue entries (when a channel takes it) and its recent
/// row when it is kept (routed or not: a call's page shows every utterance; an unrouted event's
/// recent row has event id 0, which no entry has); one statement per table for them all. Event
/// ids are drawn as SQLite would (one past the highest), in order, so entries keep the order of
/// their events (the rule in [`super::schema`]).
pub(super) fn insert_events(conn: &Connection, events: &[&NewEvent], now: i64) -> rusqlite::Result<()> {
    let queued: Vec<&&NewEvent> = events.iter().filter(|e| !e.channels.is_empty()).collect();
    let mut ids = Vec::with_capacity(queued.len());
    if !queued.is_empty() {
        let last: i64 = conn.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM events")?.query_row([], |r| r.get(0))?;
        ids.extend((1..=queued.len() as i64).map(|n| last + n));
        let values: Vec<&dyn ToSql> = queued
            .iter()
            .zip(&ids)
            .flat_map(|(e, id)| [id as &dyn ToSql, &e.call_id, &e.event_type, &e.event, &now])
            .collect();
        insert_rows(
            conn,
            "INSERT INTO events (id, call_id, event_type, event, accepted_at)",
            5,
            &values,
            "",
            &[],
            |_| Ok(()),
        )?;
        let values: Vec<&dyn ToSql> = queued
            .iter()
            .zip(&ids)
            .flat_map(|(e, id)| e.channels.iter().flat_map(move |c| [c as &dyn ToSql, id]))
            .collect();
        insert_rows(conn, "INSERT INTO queue (channel, event_id)", 2, &values, "", &[], |_| Ok(()))?;
    }
    let recent: Vec<(i64, &&NewEvent, String, String)> = {
        let mut id = ids.iter();
        events
            .iter()
            .filter_map(|e| {
                let event_id = if e.channels.is_empty() { 0 } else { *id.next().expect("an id per queued event") };
                e.recent.then(|| (event_id, e, json_list(&e.routes), json_list(&e.channels)))
            })
            .collect()
    };
    let values: Vec<&dyn ToSql> = recent
        .iter()
        .flat_map(|(id, e, routes, channels)| {
            [id as &dyn ToSql, &e.call_id, &e.event_type, routes, channels, &now, &e.shown]
        })
        .collect();
    insert_rows(
        conn,
        "INSERT INTO recent (event_id, call_id, event_type, routes, channels, accepted_at, shown)",
        7,
        &values,
        "",
        &[],
        |_| Ok(()),
    )
}

/// Most rows one statement inserts. Statements are sized in powers of two up to it, so each
/// kind is prepared (and cached) at most seven times.
const ROWS_PER_STATEMENT: usize = 64;

/// Runs `head VALUES (?, …), … tail` over `values`, `width` of them a row, rows in order, in as
/// few statements as [`ROWS_PER_STATEMENT`] allows; `extra` are bound after each statement's rows
/// (for `tail`), and `row` reads what each statement returns.
fn insert_rows(
    conn: &Connection,
    head: &str,
    width: usize,
    values: &[&dyn ToSql],
    tail: &str,
    extra: &[&dyn ToSql],
    mut row: impl FnMut(&rusqlite::Row) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let one = format!("({})", vec!["?"; width].join(", "));
    let mut rest = values;
    while !rest.is_empty() {
        let rows = 1 << (rest.len() / width).min(ROWS_PER_STATEMENT).ilog2();
        let (these, later) = rest.split_at(rows * width);
        let mut statement =
            conn.prepare_cached(&format!("{head} VALUES {}{tail}", vec![one.as_str(); rows].join(", ")))?;
        let mut returned = statement.query(rusqlite::params_from_iter(these.iter().chain(extra)))?;
        while let Some(r) = returned.next()? {
            row(r)?;
        }
        rest = later;
    }
    Ok(())
}

/// Remembers what an event tells about its call; whether it is the first the store sees of the
/// call (asked only when `may_be_first`: one statement less per event otherwise).
pub(super) fn remember(
    conn: &Connection,
    call_id: &str,
    note: &CallNote,
    now: i64,
    may_be_first: bool,
) -> rusqlite::Result<bool> {
    let values = params![
        call_id,
        note.agent_id,
        note.user_name,
        note.call_data,
        now,
        i64::from(note.utterance),
        note.ended.then_some(now)
    ];
    // A call's later events mostly tell only their time and kind: one small update.
    if !may_be_first && note.agent_id.is_none() && note.user_name.is_none() && note.call_data.is_none() {
        let updated = if note.touch || note.ended {
            conn.prepare_cached(
                "UPDATE calls SET last_at = MAX(last_at, ?2), utterances = utterances + ?3,
                     ended_at = COALESCE(ended_at, ?4) WHERE call_id = ?1",
            )?
            .execute(params![call_id, now, i64::from(note.utterance), note.ended.then_some(now)])?
        } else {
            // Without a new last-event time the open calls' index is not written either.
            conn.prepare_cached("UPDATE calls SET utterances = utterances + ?2 WHERE call_id = ?1")?
                .execute(params![call_id, i64::from(note.utterance)])?
        };
        if updated == 1 {
            return Ok(false);
        }
    }
    if may_be_first {
        let created = conn
            .prepare_cached(
                "INSERT INTO calls (call_id, agent_id, user_name, call_data, first_at, last_at, utterances, ended_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7) ON CONFLICT (call_id) DO NOTHING",
            )?
            .execute(values)?;
        if created == 1 {
            return Ok(true);
        }
    }
    conn.prepare_cached(
        "INSERT INTO calls (call_id, agent_id, user_name, call_data, first_at, last_at, utterances, ended_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)
         ON CONFLICT (call_id) DO UPDATE SET
             agent_id = COALESCE(calls.agent_id, excluded.agent_id),
             user_name = COALESCE(calls.user_name, excluded.user_name),
             call_data = COALESCE(calls.call_data, excluded.call_data),
             last_at = MAX(calls.last_at, excluded.last_at),
             utterances = calls.utterances + excluded.utterances,
             ended_at = COALESCE(calls.ended_at, excluded.ended_at)",
    )?
    .execute(values)?;
    Ok(false)
}
