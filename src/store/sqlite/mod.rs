//! The embedded store: one SQLite file in WAL mode with `synchronous = FULL`, so a commit survives
//! `kill -9` and power loss. One writer thread owns the connection and runs every operation that
//! arrives while it is busy in a single transaction: concurrent requests share one disk sync
//! (group commit), and each caller hears back only after that commit.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use tokio::sync::oneshot;

use super::{now_ms, Fence, StoreError};

mod calls;
mod intake;
mod leases;
mod queue;
mod schema;
mod stats;

/// Most operations committed together in one transaction.
const MAX_BATCH: usize = 1024;

/// The SQLite store. Cheap to share behind an `Arc`; dropping the last handle stops the writer.
pub struct SqliteStore {
    jobs: mpsc::Sender<Box<dyn Job>>,
    path: PathBuf,
    /// When expired once-keys were last deleted (ms).
    purged_at: std::sync::Arc<std::sync::atomic::AtomicI64>,
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
        // `temp_store = MEMORY`: the writer's savepoint journals stay in memory (in a temporary
        // file, every page a job touched was written there first: half the writer's `pwrite`s).
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA temp_store = MEMORY;")
            .map_err(|e| fail(e.to_string()))?;
        schema::upgrade(&conn).map_err(fail)?;
        // Room for the multi-row intake statements (up to seven sizes per table) beside the rest.
        conn.set_prepared_statement_cache_capacity(128);
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
        Ok(SqliteStore { jobs: tx, path: path.to_path_buf(), purged_at: Default::default() })
    }

    /// The store version of the file at `path` when opening it would upgrade it (an older
    /// release wrote it): `Some((found, this release's))`. Reads only; a missing file is `None`.
    pub fn upgrade_pending(path: &Path) -> Result<Option<(i64, i64)>, StoreError> {
        if !path.exists() {
            return Ok(None);
        }
        let fail = |e: rusqlite::Error| StoreError::Open {
            key: "store.path",
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(fail)?;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(fail)?;
        Ok((found > 0 && found < schema::VERSION).then_some((found, schema::VERSION)))
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
    /// An accept, which the writer commits together with the accepts queued next to it.
    fn accepting(&mut self) -> Option<&mut intake::Accepting> {
        None
    }
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
/// one failing job does not undo the others; a run of accepts side by side in one savepoint, with
/// a statement per table for all of them, and one by one if that fails), commit once, then answer
/// each. The control statements are prepared once (parsing them per job was a measurable share
/// of the writer's time).
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
        let mut i = 0;
        while i < batch.len() && fatal.is_none() {
            let mut accepts: Vec<&mut intake::Accepting> = batch[i..].iter_mut().map_while(|j| j.accepting()).collect();
            if accepts.len() > 1 {
                let n = accepts.len();
                let _ = control("SAVEPOINT accepts");
                match intake::accept_many(&conn, &mut accepts) {
                    Ok(()) => {
                        let _ = control("RELEASE accepts");
                        results.extend((0..n).map(|_| Ok(())));
                        i += n;
                        continue;
                    }
                    Err(e) if conn.is_autocommit() => {
                        fatal = Some(classify(&e));
                        break;
                    }
                    // Then each alone, so one failing accept does not refuse the others.
                    Err(_) => {
                        let _ = control("ROLLBACK TO accepts").and_then(|()| control("RELEASE accepts"));
                    }
                }
            }
            let _ = control("SAVEPOINT job");
            match batch[i].run(&conn) {
                Ok(()) => {
                    let _ = control("RELEASE job");
                    results.push(Ok(()));
                }
                // Some errors (a full disk among them) make SQLite roll back the whole
                // transaction: then nothing in this batch was written, and every caller hears so.
                Err(e) if conn.is_autocommit() => fatal = Some(classify(&e)),
                Err(e) => {
                    let _ = control("ROLLBACK TO job").and_then(|()| control("RELEASE job"));
                    results.push(Err(classify(&e)));
                }
            }
            i += 1;
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

#[cfg(test)]
mod tests;
