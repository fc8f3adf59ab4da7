//! The embedded store: one SQLite file in WAL mode with `synchronous = FULL`, so a commit survives
//! `kill -9` and power loss. One writer thread owns the connection and runs every operation that
//! arrives while it is busy in a single transaction: concurrent requests share one disk sync
//! (group commit), and each caller hears back only after that commit.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use async_trait::async_trait;
use rusqlite::{params, Connection, ErrorCode};
use tokio::sync::oneshot;

use super::{now_ms, Accepted, DeadLetter, Depth, NewDeadLetter, NewDelivery, OnceKey, Queued, Store, StoreError};

/// Most operations committed together in one transaction.
const MAX_BATCH: usize = 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel     TEXT    NOT NULL,
    call_id     TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    coalesce    INTEGER NOT NULL,
    accepted_at INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_answer TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_by_channel ON deliveries (channel, id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel     TEXT    NOT NULL,
    call_id     TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    body        TEXT,
    event       TEXT,
    reason      TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    accepted_at INTEGER NOT NULL,
    failed_at   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS readiness (x INTEGER);
CREATE TABLE IF NOT EXISTS seen (
    key        TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_by_expiry ON seen (expires_at);
PRAGMA user_version = 1;
";

/// The SQLite store. Cheap to share behind an `Arc`; dropping the last handle stops the writer.
pub struct SqliteStore {
    jobs: mpsc::Sender<Box<dyn Job>>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating the file and its directory if needed) the store at `path`. `max_bytes` caps
    /// the database size: beyond it, accepting answers 503 instead of filling the disk.
    pub fn open(path: &Path, max_bytes: Option<u64>) -> Result<SqliteStore, StoreError> {
        let fail = |message: String| StoreError::Open { path: path.display().to_string(), message };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create its directory: {e}")))?;
        }
        let conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .and_then(|_| conn.execute_batch(SCHEMA))
            .map_err(|e| fail(e.to_string()))?;
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
/// one failing job does not undo the others), commit once, then answer each.
fn writer(conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let err = classify(&e);
            batch.iter_mut().for_each(|j| j.finish(Err(err.clone())));
            continue;
        }
        let mut results = Vec::with_capacity(batch.len());
        let mut fatal = None;
        for job in batch.iter_mut() {
            let _ = conn.execute_batch("SAVEPOINT job");
            match job.run(&conn) {
                Ok(()) => {
                    let _ = conn.execute_batch("RELEASE job");
                    results.push(Ok(()));
                }
                // Some errors (a full disk among them) make SQLite roll back the whole
                // transaction: then nothing in this batch was written, and every caller hears so.
                Err(e) if conn.is_autocommit() => {
                    fatal = Some(classify(&e));
                    break;
                }
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
                    results.push(Err(classify(&e)));
                }
            }
        }
        let committed = match fatal {
            Some(err) => Err(err),
            None => conn.execute_batch("COMMIT").map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                classify(&e)
            }),
        };
        match committed {
            Ok(()) => batch.iter_mut().zip(results).for_each(|(j, r)| j.finish(r)),
            Err(err) => batch.iter_mut().for_each(|j| j.finish(Err(err.clone()))),
        }
    }
}

fn in_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

#[async_trait]
impl Store for SqliteStore {
    async fn accept(
        &self,
        deliveries: Vec<NewDelivery>,
        dead: Vec<NewDeadLetter>,
        once: Vec<OnceKey>,
    ) -> Result<Accepted, StoreError> {
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
            let mut insert = conn.prepare_cached(
                "INSERT INTO deliveries (channel, call_id, event_type, body, coalesce, accepted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for d in &deliveries {
                insert.execute(params![d.channel, d.call_id, d.event_type, d.body, d.coalesce, now])?;
            }
            let mut dl = conn.prepare_cached(
                "INSERT INTO dead_letters (channel, call_id, event_type, body, event, reason, attempts, accepted_at, failed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?7)",
            )?;
            for d in &dead {
                dl.execute(params![d.channel, d.call_id, d.event_type, d.body, d.event, d.reason, now])?;
            }
            Ok(Accepted::New)
        })
        .await
    }

    async fn pending(&self, channel: &str, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let channel = channel.to_owned();
        self.run(move |conn| {
            let mut q = conn.prepare_cached(
                "SELECT id, channel, call_id, event_type, body, coalesce, accepted_at, attempts
                 FROM deliveries WHERE channel = ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = q.query_map(params![channel, limit as i64], |r| {
                Ok(Queued {
                    id: r.get(0)?,
                    channel: r.get(1)?,
                    call_id: r.get(2)?,
                    event_type: r.get(3)?,
                    body: r.get(4)?,
                    coalesce: r.get(5)?,
                    accepted_at_ms: r.get(6)?,
                    attempts: r.get(7)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn delivered(&self, ids: Vec<i64>) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.execute(&format!("DELETE FROM deliveries WHERE id IN ({})", in_list(&ids)), []).map(|_| ())
        })
        .await
    }

    async fn failed_attempt(&self, ids: Vec<i64>, answer: String) -> Result<(), StoreError> {
        self.run(move |conn| {
            let sql = format!(
                "UPDATE deliveries SET attempts = attempts + 1, last_answer = ?1 WHERE id IN ({})",
                in_list(&ids)
            );
            conn.execute(&sql, params![answer]).map(|_| ())
        })
        .await
    }

    async fn dead_letter(&self, ids: Vec<i64>, reason: String) -> Result<(), StoreError> {
        self.run(move |conn| {
            let list = in_list(&ids);
            conn.execute(
                &format!(
                    "INSERT INTO dead_letters (channel, call_id, event_type, body, event, reason, attempts, accepted_at, failed_at)
                     SELECT channel, call_id, event_type, body, NULL, ?1, attempts, accepted_at, ?2 FROM deliveries WHERE id IN ({list}) ORDER BY id"
                ),
                params![reason, now_ms()],
            )?;
            conn.execute(&format!("DELETE FROM deliveries WHERE id IN ({list})"), []).map(|_| ())
        })
        .await
    }

    async fn depths(&self) -> Result<Vec<Depth>, StoreError> {
        self.run(|conn| {
            let mut q = conn.prepare_cached(
                "SELECT channel, COUNT(*), MIN(accepted_at) FROM deliveries GROUP BY channel ORDER BY channel",
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

    async fn requeue(&self, dead_letter: i64, bodies: Vec<String>) -> Result<(), StoreError> {
        let found = self
            .run(move |conn| {
                let row: Option<(String, String, String)> = conn
                    .query_row(
                        "SELECT channel, call_id, event_type FROM dead_letters WHERE id = ?1",
                        params![dead_letter],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .map(Some)
                    .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(e) })?;
                let Some((channel, call_id, event_type)) = row else { return Ok(false) };
                for body in &bodies {
                    conn.execute(
                        "INSERT INTO deliveries (channel, call_id, event_type, body, coalesce, accepted_at) VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                        params![channel, call_id, event_type, body, now_ms()],
                    )?;
                }
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

    async fn ping(&self, bytes: usize) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.execute("INSERT INTO readiness VALUES (zeroblob(?1))", params![bytes as i64])?;
            conn.execute("DELETE FROM readiness", []).map(|_| ())
        })
        .await
    }
}

#[cfg(test)]
mod tests;
