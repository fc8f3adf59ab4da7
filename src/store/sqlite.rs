//! The embedded store: one SQLite file in WAL mode with `synchronous = FULL`, so a commit survives
//! `kill -9` and power loss. One writer thread owns the connection and runs every operation that
//! arrives while it is busy in a single transaction: concurrent requests share one disk sync
//! (group commit), and each caller hears back only after that commit.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use async_trait::async_trait;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use tokio::sync::oneshot;

use super::{
    now_ms, Accepted, Activity, Content, DeadLetter, Depth, Fence, LaneState, Lease, NewEvent, OnceKey, Queued,
    RecentEvent, Store, StoreError, Transcript,
};

mod schema;

/// Most operations committed together in one transaction.
const MAX_BATCH: usize = 1024;

/// The SQLite store. Cheap to share behind an `Arc`; dropping the last handle stops the writer.
pub struct SqliteStore {
    jobs: mpsc::Sender<Box<dyn Job>>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating the file and its directory if needed) the store at `path`. `max_bytes` caps
    /// the database size: beyond it, accepting answers 503 instead of filling the disk.
    pub fn open(path: &Path, max_bytes: Option<u64>) -> Result<SqliteStore, StoreError> {
        let fail = |message: String| StoreError::Open { key: "store.path", path: path.display().to_string(), message };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create its directory: {e}")))?;
        }
        let conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(|e| fail(e.to_string()))?;
        schema::upgrade(&conn).map_err(fail)?;
        if let Some(max) = max_bytes {
            let page: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(|e| fail(e.to_string()))?;
            conn.execute_batch(&format!("PRAGMA max_page_count = {}", (max / page).max(16)))
                .map_err(|e| fail(e.to_string()))?;
        }
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("callrelay-store".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| fail(e.to_string()))?;
        Ok(SqliteStore { jobs: tx, path: path.to_path_buf() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Op { f: Some(f), out: None, reply: Some(reply) };
        self.jobs.send(Box::new(job)).map_err(|_| StoreError::Failed("the store's writer has stopped".into()))?;
        answer.await.map_err(|_| StoreError::Failed("the store's writer has stopped".into()))?
    }

    /// Runs `f` only while `fence` is the channel's current lease (else [`StoreError::Fenced`],
    /// nothing written).
    async fn fenced<T, F>(&self, fence: &Fence, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (channel, token) = (fence.channel.clone(), fence.token);
        let current = self
            .run(move |conn| {
                let held = conn
                    .prepare_cached("SELECT 1 FROM lanes WHERE channel = ?1 AND token = ?2")?
                    .exists(params![channel, token])?;
                if held {
                    f(conn).map(Some)
                } else {
                    Ok(None)
                }
            })
            .await?;
        current.ok_or_else(|| StoreError::Fenced(fence.channel.clone()))
    }
}

trait Job: Send {
    fn run(&mut self, conn: &Connection) -> rusqlite::Result<()>;
    fn finish(&mut self, outcome: Result<(), StoreError>);
}

struct Op<T, F> {
    f: Option<F>,
    out: Option<T>,
    reply: Option<oneshot::Sender<Result<T, StoreError>>>,
}

impl<T: Send, F: FnOnce(&Connection) -> rusqlite::Result<T> + Send> Job for Op<T, F> {
    fn run(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let f = self.f.take().expect("a job runs once");
        self.out = Some(f(conn)?);
        Ok(())
    }

    fn finish(&mut self, outcome: Result<(), StoreError>) {
        let result = outcome.and_then(|()| self.out.take().ok_or_else(|| StoreError::Failed("no result".into())));
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }
}

fn classify(e: &rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::Full,
        _ => StoreError::Failed(e.to_string()),
    }
}

/// The writer loop: take every job waiting, run them in one transaction (each in a savepoint, so
/// one failing job does not undo the others), commit once, then answer each. The control
/// statements are prepared once (parsing them per job was a measurable share of the writer's time).
fn writer(conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>) {
    let control = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([])).map(|_| ());
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = control("BEGIN IMMEDIATE") {
            let err = classify(&e);
            batch.iter_mut().for_each(|j| j.finish(Err(err.clone())));
            continue;
        }
        let mut results = Vec::with_capacity(batch.len());
        let mut fatal = None;
        for job in batch.iter_mut() {
            let _ = control("SAVEPOINT job");
            match job.run(&conn) {
                Ok(()) => {
                    let _ = control("RELEASE job");
                    results.push(Ok(()));
                }
                // Some errors (a full disk among them) make SQLite roll back the whole
                // transaction: then nothing in this batch was written, and every caller hears so.
                Err(e) if conn.is_autocommit() => {
                    fatal = Some(classify(&e));
                    break;
                }
                Err(e) => {
                    let _ = control("ROLLBACK TO job").and_then(|()| control("RELEASE job"));
                    results.push(Err(classify(&e)));
                }
            }
        }
        let committed = match fatal {
            Some(err) => Err(err),
            None => control("COMMIT").map_err(|e| {
                let _ = control("ROLLBACK");
                classify(&e)
            }),
        };
        match committed {
            Ok(()) => batch.iter_mut().zip(results).for_each(|(j, r)| j.finish(r)),
            Err(err) => batch.iter_mut().for_each(|j| j.finish(Err(err.clone()))),
        }
    }
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).expect("strings serialise")
}

/// Records what became of queue entries' posts, for the console (only for events it still keeps).
fn note_outcome(conn: &Connection, ids: &[i64], status: &str, answer: Option<&str>) -> rusqlite::Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO outcomes (recent_id, channel, status, attempts, answer, at)
             SELECT (SELECT MAX(r.id) FROM recent r WHERE r.event_id = q.event_id), q.channel, ?1, q.attempts, ?2, ?3
             FROM queue q
             WHERE q.id IN ({}) AND EXISTS (SELECT 1 FROM recent r WHERE r.event_id = q.event_id)
             ON CONFLICT (recent_id, channel) DO UPDATE SET status = excluded.status,
                 attempts = excluded.attempts, answer = excluded.answer, at = excluded.at",
            in_list(ids)
        ),
        params![status, answer, now_ms()],
    )
    .map(|_| ())
}

fn in_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Deletes queue entries, then the events no entry points at any more: those older than the first
/// entry's event (see the ordering rule in [`schema`]); all of them when the queue is empty.
fn remove_entries(conn: &Connection, ids: &[i64]) -> rusqlite::Result<()> {
    conn.execute(&format!("DELETE FROM queue WHERE id IN ({})", in_list(ids)), [])?;
    let first: Option<i64> = conn
        .prepare_cached("SELECT event_id FROM queue ORDER BY id LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    conn.prepare_cached("DELETE FROM events WHERE id < ?1")?.execute([first.unwrap_or(i64::MAX)])?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn accept(&self, event: Option<NewEvent>, once: Vec<OnceKey>) -> Result<Accepted, StoreError> {
        self.run(move |conn| {
            let now = now_ms();
            if !once.is_empty() {
                conn.prepare_cached("DELETE FROM seen WHERE expires_at < ?1")?.execute(params![now])?;
                let mut known = conn.prepare_cached("SELECT 1 FROM seen WHERE key = ?1")?;
                for k in &once {
                    if known.exists(params![k.key])? {
                        return Ok(Accepted::Seen(k.key.clone()));
                    }
                }
                let mut remember = conn.prepare_cached("INSERT INTO seen (key, expires_at) VALUES (?1, ?2)")?;
                for k in &once {
                    remember.execute(params![k.key, k.expires_at_ms])?;
                }
            }
            if let Some(e) = event.filter(|e| !e.channels.is_empty()) {
                conn.prepare_cached(
                    "INSERT INTO events (call_id, event_type, event, accepted_at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![e.call_id, e.event_type, e.event, now])?;
                let event_id = conn.last_insert_rowid();
                let mut entry = conn.prepare_cached("INSERT INTO queue (channel, event_id) VALUES (?1, ?2)")?;
                for channel in &e.channels {
                    entry.execute(params![channel, event_id])?;
                }
                if e.recent {
                    conn.prepare_cached(
                        "INSERT INTO recent (event_id, call_id, event_type, routes, channels, accepted_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        event_id,
                        e.call_id,
                        e.event_type,
                        json_list(&e.routes),
                        json_list(&e.channels),
                        now
                    ])?;
                }
            }
            Ok(Accepted::New)
        })
        .await
    }

    async fn pending(&self, channel: &str, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let channel = channel.to_owned();
        self.run(move |conn| {
            let mut q = conn.prepare_cached(
                "SELECT q.id, q.channel, e.call_id, e.event_type, e.event, q.body, q.coalesce, e.accepted_at,
                        q.attempts, q.sent_parts
                 FROM queue q JOIN events e ON e.id = q.event_id WHERE q.channel = ?1 ORDER BY q.id LIMIT ?2",
            )?;
            let rows = q.query_map(params![channel, limit as i64], |r| {
                let content = match r.get::<_, Option<String>>(5)? {
                    Some(body) => Content::Rendered { body, coalesce: r.get(6)? },
                    None => Content::Event(r.get::<_, Option<String>>(4)?.unwrap_or_default()),
                };
                Ok(Queued {
                    id: r.get(0)?,
                    channel: r.get(1)?,
                    call_id: r.get(2)?,
                    event_type: r.get(3)?,
                    content,
                    accepted_at_ms: r.get(7)?,
                    attempts: r.get(8)?,
                    sent_parts: r.get(9)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn delivered(&self, fence: &Fence, ids: Vec<i64>) -> Result<(), StoreError> {
        self.fenced(fence, move |conn| {
            note_outcome(conn, &ids, "delivered", None)?;
            remove_entries(conn, &ids)
        })
        .await
    }

    async fn parts_delivered(&self, fence: &Fence, id: i64, parts: u32) -> Result<(), StoreError> {
        self.fenced(fence, move |conn| {
            conn.execute("UPDATE queue SET sent_parts = ?1, attempts = 0 WHERE id = ?2", params![parts, id]).map(|_| ())
        })
        .await
    }

    async fn failed_attempt(&self, fence: &Fence, ids: Vec<i64>, answer: String) -> Result<(), StoreError> {
        self.fenced(fence, move |conn| {
            let sql =
                format!("UPDATE queue SET attempts = attempts + 1, last_answer = ?1 WHERE id IN ({})", in_list(&ids));
            conn.execute(&sql, params![answer])?;
            note_outcome(conn, &ids, "retrying", Some(&answer))
        })
        .await
    }

    async fn dead_letter(&self, fence: &Fence, ids: Vec<i64>, reason: String) -> Result<(), StoreError> {
        self.fenced(fence, move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO dead_letters (channel, call_id, event_type, body, event, reason, attempts, accepted_at, failed_at)
                     SELECT q.channel, e.call_id, e.event_type, q.body, e.event, ?1, q.attempts, e.accepted_at, ?2
                     FROM queue q JOIN events e ON e.id = q.event_id WHERE q.id IN ({}) ORDER BY q.id",
                    in_list(&ids)
                ),
                params![reason, now_ms()],
            )?;
            note_outcome(conn, &ids, "dead_lettered", Some(&reason))?;
            remove_entries(conn, &ids)
        })
        .await
    }

    async fn depths(&self) -> Result<Vec<Depth>, StoreError> {
        self.run(|conn| {
            let mut q = conn.prepare_cached(
                "SELECT q.channel, COUNT(*), MIN(e.accepted_at) FROM queue q JOIN events e ON e.id = q.event_id
                 GROUP BY q.channel ORDER BY q.channel",
            )?;
            let rows = q.query_map([], |r| {
                Ok(Depth { channel: r.get(0)?, pending: r.get::<_, i64>(1)? as u64, oldest_ms: r.get(2)? })
            })?;
            rows.collect()
        })
        .await
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.run(|conn| {
            let mut q = conn.prepare_cached(
                "SELECT id, channel, call_id, event_type, body, event, reason, attempts, accepted_at, failed_at FROM dead_letters ORDER BY id",
            )?;
            let rows = q.query_map([], |r| {
                Ok(DeadLetter {
                    id: r.get(0)?,
                    channel: r.get(1)?,
                    call_id: r.get(2)?,
                    event_type: r.get(3)?,
                    body: r.get(4)?,
                    event: r.get(5)?,
                    reason: r.get(6)?,
                    attempts: r.get(7)?,
                    accepted_at_ms: r.get(8)?,
                    failed_at_ms: r.get(9)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn requeue(&self, dead_letter: i64) -> Result<(), StoreError> {
        let found = self
            .run(move |conn| {
                let moved = conn.execute(
                    "INSERT INTO events (call_id, event_type, event, accepted_at)
                     SELECT call_id, event_type, event, ?2 FROM dead_letters WHERE id = ?1",
                    params![dead_letter, now_ms()],
                )?;
                if moved == 0 {
                    return Ok(false);
                }
                conn.execute(
                    "INSERT INTO queue (channel, event_id, body) SELECT channel, ?2, body FROM dead_letters WHERE id = ?1",
                    params![dead_letter, conn.last_insert_rowid()],
                )?;
                conn.execute("DELETE FROM dead_letters WHERE id = ?1", params![dead_letter])?;
                Ok(true)
            })
            .await?;
        if found {
            Ok(())
        } else {
            Err(StoreError::NoSuchDeadLetter(dead_letter))
        }
    }

    async fn purge(&self, before_ms: Option<i64>) -> Result<usize, StoreError> {
        self.run(move |conn| {
            conn.execute("DELETE FROM dead_letters WHERE failed_at < ?1", params![before_ms.unwrap_or(i64::MAX)])
        })
        .await
    }

    async fn thread(&self, channel: &str, call_id: &str) -> Result<Option<String>, StoreError> {
        let (channel, call_id) = (channel.to_owned(), call_id.to_owned());
        self.run(move |conn| {
            conn.prepare_cached("SELECT thread FROM threads WHERE channel = ?1 AND call_id = ?2")?
                .query_row(params![channel, call_id], |r| r.get(0))
                .optional()
        })
        .await
    }

    async fn set_thread(&self, fence: &Fence, call_id: &str, thread: String) -> Result<(), StoreError> {
        let (channel, call_id) = (fence.channel.clone(), call_id.to_owned());
        self.fenced(fence, move |conn| {
            conn.prepare_cached(
                "INSERT INTO threads (channel, call_id, thread) VALUES (?1, ?2, ?3)
                 ON CONFLICT (channel, call_id) DO UPDATE SET thread = excluded.thread",
            )?
            .execute(params![channel, call_id, thread])
            .map(|_| ())
        })
        .await
    }

    async fn forget_call_at(&self, fence: &Fence, call_id: &str, forget_at_ms: i64) -> Result<(), StoreError> {
        let (channel, call_id) = (fence.channel.clone(), call_id.to_owned());
        self.fenced(fence, move |conn| {
            for table in ["threads", "transcripts"] {
                conn.prepare_cached(&format!("UPDATE {table} SET forget_at = ?3 WHERE channel = ?1 AND call_id = ?2"))?
                    .execute(params![channel, call_id, forget_at_ms])?;
                conn.prepare_cached(&format!("DELETE FROM {table} WHERE forget_at < ?1"))?
                    .execute(params![now_ms()])?;
            }
            Ok(())
        })
        .await
    }

    async fn transcript(&self, channel: &str, call_id: &str) -> Result<Option<Transcript>, StoreError> {
        let (channel, call_id) = (channel.to_owned(), call_id.to_owned());
        self.run(move |conn| {
            conn.prepare_cached(
                "SELECT message_id, thread, part, lines FROM transcripts WHERE channel = ?1 AND call_id = ?2",
            )?
            .query_row(params![channel, call_id], |r| {
                Ok(Transcript { message_id: r.get(0)?, thread: r.get(1)?, part: r.get(2)?, lines: r.get(3)? })
            })
            .optional()
        })
        .await
    }

    async fn set_transcript(&self, fence: &Fence, call_id: &str, t: Transcript) -> Result<(), StoreError> {
        let (channel, call_id) = (fence.channel.clone(), call_id.to_owned());
        self.fenced(fence, move |conn| {
            conn.prepare_cached(
                "INSERT INTO transcripts (channel, call_id, message_id, thread, part, lines) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (channel, call_id) DO UPDATE SET message_id = excluded.message_id,
                     thread = excluded.thread, part = excluded.part, lines = excluded.lines",
            )?
            .execute(params![channel, call_id, t.message_id, t.thread, t.part, t.lines])
            .map(|_| ())
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

    async fn lease(
        &self,
        channel: &str,
        owner: &str,
        ttl_ms: i64,
        held: Option<i64>,
    ) -> Result<Option<Lease>, StoreError> {
        let (channel, owner) = (channel.to_owned(), owner.to_owned());
        self.run(move |conn| {
            // One relay per file: always granted; the token moves on unless `held` is current.
            conn.prepare_cached(
                "INSERT INTO lanes (channel, owner, token, expires_at) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT (channel) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,
                     token = CASE WHEN lanes.owner = excluded.owner AND lanes.token = ?4
                                  THEN lanes.token ELSE lanes.token + 1 END
                 RETURNING token, pacing",
            )?
            .query_row(params![channel, owner, now_ms() + ttl_ms, held.unwrap_or(-1)], |r| {
                Ok(Some(Lease { token: r.get(0)?, pacing: r.get(1)? }))
            })
        })
        .await
    }

    async fn release(&self, fence: &Fence) -> Result<(), StoreError> {
        let channel = fence.channel.clone();
        self.fenced(fence, move |conn| {
            conn.execute("UPDATE lanes SET expires_at = 0, owner = '' WHERE channel = ?1", params![channel]).map(|_| ())
        })
        .await
    }

    async fn save_pacing(&self, fence: &Fence, pacing: String) -> Result<(), StoreError> {
        let channel = fence.channel.clone();
        self.fenced(fence, move |conn| {
            conn.prepare_cached("UPDATE lanes SET pacing = ?2 WHERE channel = ?1")?
                .execute(params![channel, pacing])
                .map(|_| ())
        })
        .await
    }

    async fn set_broken(&self, fence: &Fence, why: String) -> Result<(), StoreError> {
        let channel = fence.channel.clone();
        self.fenced(fence, move |conn| {
            conn.execute("UPDATE lanes SET broken = ?2 WHERE channel = ?1", params![channel, why]).map(|_| ())
        })
        .await
    }

    async fn clear_broken(&self) -> Result<(), StoreError> {
        self.run(|conn| conn.execute("UPDATE lanes SET broken = NULL", []).map(|_| ())).await
    }

    async fn recent(&self, call: Option<&str>, limit: usize) -> Result<Vec<RecentEvent>, StoreError> {
        let call = call.map(str::to_owned);
        self.run(move |conn| {
            let row = |r: &rusqlite::Row| -> rusqlite::Result<(RecentEvent, String)> {
                let routes: String = r.get(3)?;
                Ok((
                    RecentEvent {
                        id: r.get(0)?,
                        call_id: r.get(1)?,
                        event_type: r.get(2)?,
                        routes: serde_json::from_str(&routes).unwrap_or_default(),
                        accepted_at_ms: r.get(5)?,
                        posts: Vec::new(),
                    },
                    r.get(4)?,
                ))
            };
            const COLUMNS: &str = "SELECT id, call_id, event_type, routes, channels, accepted_at FROM recent";
            let found: Vec<(RecentEvent, String)> = match &call {
                Some(call) => conn
                    .prepare_cached(&format!("{COLUMNS} WHERE call_id = ?1 ORDER BY id LIMIT ?2"))?
                    .query_map(params![call, limit as i64], row)?
                    .collect::<rusqlite::Result<_>>()?,
                None => conn
                    .prepare_cached(&format!("{COLUMNS} ORDER BY id DESC LIMIT ?1"))?
                    .query_map(params![limit as i64], row)?
                    .collect::<rusqlite::Result<_>>()?,
            };
            let ids: Vec<i64> = found.iter().map(|(e, _)| e.id).collect();
            let mut outcomes = std::collections::HashMap::new();
            let sql = format!(
                "SELECT recent_id, channel, status, attempts, answer, at FROM outcomes WHERE recent_id IN ({})",
                in_list(&ids)
            );
            for o in conn.prepare(&sql)?.query_map([], |r| {
                Ok(((r.get::<_, i64>(0)?, r.get::<_, String>(1)?), (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            })? {
                let (key, value) = o?;
                outcomes.insert(key, value);
            }
            Ok(found.into_iter().map(|(e, channels)| super::with_posts(e, &channels, &mut outcomes)).collect())
        })
        .await
    }

    async fn activity(&self, since_ms: i64) -> Result<Vec<Activity>, StoreError> {
        self.run(move |conn| {
            let mut q = conn.prepare_cached(
                "SELECT channel, (at / 60000) * 60000 AS minute, SUM(status = 'delivered'), SUM(status <> 'delivered')
                 FROM outcomes WHERE at >= ?1 GROUP BY channel, minute ORDER BY channel, minute",
            )?;
            let rows = q.query_map(params![since_ms], |r| {
                Ok(Activity {
                    channel: r.get(0)?,
                    minute_ms: r.get(1)?,
                    delivered: r.get::<_, i64>(2)? as u64,
                    failed: r.get::<_, i64>(3)? as u64,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn forget_recent(&self, before_ms: i64) -> Result<(), StoreError> {
        self.run(move |conn| {
            // Rows are written in id order with non-decreasing times: the old ones are a prefix.
            conn.prepare_cached(
                "DELETE FROM recent WHERE id < COALESCE(
                     (SELECT id FROM recent WHERE accepted_at >= ?1 ORDER BY id LIMIT 1),
                     (SELECT MAX(id) + 1 FROM recent), 0)",
            )?
            .execute(params![before_ms])?;
            conn.prepare_cached("DELETE FROM outcomes WHERE at < ?1")?.execute(params![before_ms]).map(|_| ())
        })
        .await
    }

    async fn lanes(&self) -> Result<Vec<LaneState>, StoreError> {
        self.run(|conn| {
            let mut q = conn.prepare_cached("SELECT channel, owner, broken FROM lanes ORDER BY channel")?;
            let rows =
                q.query_map([], |r| Ok(LaneState { channel: r.get(0)?, owner: r.get(1)?, broken: r.get(2)? }))?;
            rows.collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests;
