//! Intake: committing accepted events and their once-keys, and whether a write would succeed now. (the SQLite store)

use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use rusqlite::params;

use super::*;
use crate::store::{now_ms, Accepted, CallNote, Intake, NewEvent, OnceKey, StoreError};

#[async_trait]
impl Intake for SqliteStore {
    async fn accept(&self, event: Option<NewEvent>, once: Vec<OnceKey>) -> Result<Accepted, StoreError> {
        let purged = self.purged_at.clone();
        self.run(move |conn| {
            let now = now_ms();
            if !once.is_empty() {
                purge_expired_keys(conn, now, &purged)?;
                // One statement per key: new, or known but expired (not purged yet), takes it.
                let mut claim = conn.prepare_cached(
                    "INSERT INTO seen (key, expires_at) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE seen.expires_at < ?3",
                )?;
                for (i, k) in once.iter().enumerate() {
                    if claim.execute(params![k.key, k.expires_at_ms, now])? == 0 {
                        // A repeat: the keys this event claimed before this one are not kept.
                        let mut free = conn.prepare_cached("DELETE FROM seen WHERE key = ?1")?;
                        for earlier in &once[..i] {
                            free.execute(params![earlier.key])?;
                        }
                        return Ok(Accepted::Seen(k.key.clone()));
                    }
                }
            }
            if let Some(e) = event {
                let first = match &e.call {
                    Some(note) => remember(conn, &e.call_id, note, now, e.started.is_some())?,
                    None => false,
                };
                if let Some(started) = e.started.as_deref().filter(|_| first) {
                    insert_event(conn, started, now)?;
                }
                insert_event(conn, &e, now)?;
            }
            Ok(Accepted::New)
        })
        .await
    }

    async fn ping(&self, bytes: usize) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.execute("INSERT INTO readiness VALUES (zeroblob(?1))", params![bytes as i64])?;
            conn.execute("DELETE FROM readiness", []).map(|_| ())
        })
        .await
    }
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
/// is kept (routed or not: a call's page shows every utterance; an unrouted event's recent row
/// has event id 0, which no entry has).
pub(super) fn insert_event(conn: &Connection, e: &NewEvent, now: i64) -> rusqlite::Result<()> {
    let mut event_id = 0;
    if !e.channels.is_empty() {
        conn.prepare_cached("INSERT INTO events (call_id, event_type, event, accepted_at) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![e.call_id, e.event_type, e.event, now])?;
        event_id = conn.last_insert_rowid();
        let mut entry = conn.prepare_cached("INSERT INTO queue (channel, event_id) VALUES (?1, ?2)")?;
        for channel in &e.channels {
            entry.execute(params![channel, event_id])?;
        }
    }
    if e.recent {
        conn.prepare_cached(
            "INSERT INTO recent (event_id, call_id, event_type, routes, channels, accepted_at, shown)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            event_id,
            e.call_id,
            e.event_type,
            json_list(&e.routes),
            json_list(&e.channels),
            now,
            e.shown
        ])?;
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
