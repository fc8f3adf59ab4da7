//! The SQLite store's tables and their versions (`PRAGMA user_version`), with the upgrades from
//! each earlier version, run at open inside one transaction.
//!
//! - Version 1: one `deliveries` row per rendered post (bodies rendered at intake).
//! - Version 2: each accepted event once in `events`, plus one small `queue` row per routed
//!   channel pointing at it; lanes render at delivery. `threads` maps a call to its thread on a
//!   channel (`threads = "per_call"`), `transcripts` to its live transcript message, `lanes`
//!   holds each channel's lane lease (token, pacing state, broken mark), `recent` and `outcomes`
//!   the recently accepted events and their posts' status for the console (all three added
//!   within version 2, created if missing). Event and queue ids are reused once deleted (no
//!   AUTOINCREMENT), so `recent` has its own never-reused id, and an entry's post belongs to the
//!   newest `recent` row of its event id. `recent` has one index besides its key,
//!   `recent_by_event`, with which a post's outcome finds its row (each index is written on every
//!   accept: measured, the two dropped ones cost a quarter of ingest): old rows are deleted by id
//!   range, and a call's page scans the kept hour. Posts a version-1 relay had
//!   queued become version-2 entries carrying their body, and are sent as they were rendered.
//! - Version 3: `calls` remembers each call (its agent, caller and `call_data`, first and last
//!   event, utterances, end or time-out), with a partial index on the open calls' last event
//!   for the time-out sweep; `recent` keeps what the call page shows of each event (caller,
//!   agent, the utterance or the summary's facts), and the rows of calls still remembered.
//! - Version 4: `seen` (once-keys: dedup and replay) is a `WITHOUT ROWID` table, one index
//!   less written per key (its keys kept); dedup keys sort by time, then call
//!   ([`crate::event::dedup_key`]).

use rusqlite::{Connection, OptionalExtension};

/// The version this release writes. 4: `seen` without rowid (see the module's list).
pub const VERSION: i64 = 4;

/// `events` and `queue` rows are written in id order and `queue.event_id` never decreases along
/// `queue.id` (an event is inserted before its entries, and a replay inserts a new event), so the
/// events older than the first queued entry's are exactly those nothing points at any more: the
/// store deletes them by range, and needs no index on `queue.event_id` (one less page written per
/// commit). Neither table needs AUTOINCREMENT: nothing outside a row refers to its id. Nor does
/// `queue.event_id` declare a foreign key: the bundled SQLite enforces them, and with no index on
/// it every event deleted would scan the queue (measured: 200 ms to delete 25 events behind a
/// 400,000-entry backlog); the store keeps the relation itself.
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    call_id     TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    event       TEXT,
    accepted_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS queue (
    id          INTEGER PRIMARY KEY,
    channel     TEXT    NOT NULL,
    event_id    INTEGER NOT NULL,
    body        TEXT,
    coalesce    INTEGER NOT NULL DEFAULT 0,
    sent_parts  INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_answer TEXT
);
CREATE INDEX IF NOT EXISTS queue_by_channel ON queue (channel, id);
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
CREATE TABLE IF NOT EXISTS threads (
    channel     TEXT    NOT NULL,
    call_id     TEXT    NOT NULL,
    thread      TEXT    NOT NULL,
    forget_at   INTEGER,
    PRIMARY KEY (channel, call_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transcripts (
    channel     TEXT    NOT NULL,
    call_id     TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    thread      TEXT,
    part        INTEGER NOT NULL,
    lines       TEXT    NOT NULL,
    forget_at   INTEGER,
    PRIMARY KEY (channel, call_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS readiness (x INTEGER);
CREATE TABLE IF NOT EXISTS seen (
    key        TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_by_expiry ON seen (expires_at);
CREATE TABLE IF NOT EXISTS recent (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    INTEGER NOT NULL,
    call_id     TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    routes      TEXT    NOT NULL,
    channels    TEXT    NOT NULL,
    accepted_at INTEGER NOT NULL,
    shown       TEXT
);
CREATE INDEX IF NOT EXISTS recent_by_event ON recent (event_id);
CREATE TABLE IF NOT EXISTS calls (
    call_id      TEXT    PRIMARY KEY,
    agent_id     TEXT,
    user_name    TEXT,
    call_data    TEXT,
    first_at     INTEGER NOT NULL,
    last_at      INTEGER NOT NULL,
    utterances   INTEGER NOT NULL,
    ended_at     INTEGER,
    timed_out_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS calls_open ON calls (last_at) WHERE ended_at IS NULL AND timed_out_at IS NULL;
CREATE TABLE IF NOT EXISTS outcomes (
    recent_id INTEGER NOT NULL,
    channel   TEXT    NOT NULL,
    status    TEXT    NOT NULL,
    attempts  INTEGER NOT NULL,
    answer    TEXT,
    at        INTEGER NOT NULL,
    PRIMARY KEY (recent_id, channel)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outcomes_by_time ON outcomes (at);
CREATE TABLE IF NOT EXISTS lanes (
    channel    TEXT    PRIMARY KEY,
    owner      TEXT    NOT NULL,
    token      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    pacing     TEXT,
    broken     TEXT
) WITHOUT ROWID;
";

/// Version 1 → 2: every queued post keeps its id (so its place in the queue), its body, attempts
/// and last answer; its call id, type and acceptance time move to an `events` row of the same id.
const FROM_1: &str = "
INSERT INTO events (id, call_id, event_type, event, accepted_at)
    SELECT id, call_id, event_type, NULL, accepted_at FROM deliveries;
INSERT INTO queue (id, channel, event_id, body, coalesce, attempts, last_answer)
    SELECT id, channel, id, body, coalesce, attempts, last_answer FROM deliveries;
DROP TABLE deliveries;
";

/// Version 3 → 4: the once-keys move to a table without rowid (run before [`TABLES`], which
/// recreates the expiry index).
const SEEN_WITHOUT_ROWID: &str = "
CREATE TABLE seen_v4 (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO seen_v4 (key, expires_at) SELECT key, expires_at FROM seen;
DROP TABLE seen;
ALTER TABLE seen_v4 RENAME TO seen;
";

/// Brings the database to [`VERSION`], creating it when new; refuses a newer one.
pub fn upgrade(conn: &Connection) -> Result<(), String> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    if found > VERSION {
        return Err(format!(
            "it was written by a newer callrelay (store version {found}; this release knows up to {VERSION})"
        ));
    }
    let steps = match found {
        VERSION => return conn.execute_batch(TABLES).map_err(|e| e.to_string()),
        1 => FROM_1,
        _ => "",
    };
    // Version 2 → 3: `recent` (when version 2 had created it) gains what the call page shows of each event.
    let has_recent: bool = conn
        .query_row("SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'recent'", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    let from_2 = if found == 2 && has_recent { "ALTER TABLE recent ADD COLUMN shown TEXT;" } else { "" };
    // Version 3 → 4: `seen` rebuilt without rowid, keeping its keys.
    let seen: Option<String> = conn
        .query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'seen'", [], |r| r.get(0))
        .optional()
        .map_err(|e| e.to_string())?;
    let from_3 = match seen {
        Some(sql) if !sql.contains("WITHOUT ROWID") => SEEN_WITHOUT_ROWID,
        _ => "",
    };
    let script =
        format!("BEGIN IMMEDIATE; {from_2} {from_3} {TABLES} {steps} PRAGMA user_version = {VERSION}; COMMIT;");
    conn.execute_batch(&script).map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        format!("upgrading it from store version {found} to {VERSION} failed (nothing was changed): {e}")
    })?;
    if found > 0 {
        tracing::info!(from = found, to = VERSION, "Upgraded the store; everything queued was kept.");
    }
    Ok(())
}
