//! The PostgreSQL store's tables and their versions, applied at connect by whichever relay gets
//! there first: a transaction-scoped advisory lock makes relays starting together take turns.

use deadpool_postgres::Client;

/// The version this release writes. 3: the columns for bodies rendered before version 2
/// (`queue.body`, `queue.coalesce`, `dead_letters.body`) are gone; nothing ever wrote them here,
/// since PostgreSQL stores began at version 2. 4: `calls` remembers each call, `recent` keeps
/// what the call page shows of each event.
pub const VERSION: i32 = 4;

/// Serialises schema changes across relays (`pg_advisory_xact_lock` key).
const MIGRATION_LOCK: i64 = 0x6361_6c6c_7265_6c61; // "callrela"

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS callrelay_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id          BIGSERIAL PRIMARY KEY,
    call_id     TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    event       TEXT,
    accepted_at BIGINT  NOT NULL
);
CREATE TABLE IF NOT EXISTS queue (
    id          BIGSERIAL PRIMARY KEY,
    channel     TEXT    NOT NULL,
    event_id    BIGINT  NOT NULL,
    sent_parts  INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_answer TEXT
);
CREATE INDEX IF NOT EXISTS queue_by_channel ON queue (channel, id);
CREATE INDEX IF NOT EXISTS queue_by_event ON queue (event_id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id          BIGSERIAL PRIMARY KEY,
    channel     TEXT    NOT NULL,
    call_id     TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    event       TEXT,
    reason      TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    accepted_at BIGINT  NOT NULL,
    failed_at   BIGINT  NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    key        TEXT   PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_by_expiry ON seen (expires_at);
CREATE TABLE IF NOT EXISTS threads (
    channel   TEXT NOT NULL,
    call_id   TEXT NOT NULL,
    thread    TEXT NOT NULL,
    forget_at BIGINT,
    PRIMARY KEY (channel, call_id)
);
CREATE TABLE IF NOT EXISTS transcripts (
    channel    TEXT    NOT NULL,
    call_id    TEXT    NOT NULL,
    message_id TEXT    NOT NULL,
    thread     TEXT,
    part       INTEGER NOT NULL,
    lines      TEXT    NOT NULL,
    forget_at  BIGINT,
    PRIMARY KEY (channel, call_id)
);
CREATE TABLE IF NOT EXISTS readiness (x TEXT);
CREATE TABLE IF NOT EXISTS recent (
    event_id    BIGINT  PRIMARY KEY,
    call_id     TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    routes      TEXT    NOT NULL,
    channels    TEXT    NOT NULL,
    accepted_at BIGINT  NOT NULL,
    shown       TEXT
);
CREATE TABLE IF NOT EXISTS calls (
    call_id      TEXT    PRIMARY KEY,
    agent_id     TEXT,
    user_name    TEXT,
    call_data    TEXT,
    first_at     BIGINT  NOT NULL,
    last_at      BIGINT  NOT NULL,
    utterances   BIGINT  NOT NULL,
    ended_at     BIGINT,
    timed_out_at BIGINT
);
CREATE INDEX IF NOT EXISTS calls_open ON calls (last_at) WHERE ended_at IS NULL AND timed_out_at IS NULL;
CREATE TABLE IF NOT EXISTS outcomes (
    event_id BIGINT  NOT NULL,
    channel  TEXT    NOT NULL,
    status   TEXT    NOT NULL,
    attempts INTEGER NOT NULL,
    answer   TEXT,
    at       BIGINT  NOT NULL,
    PRIMARY KEY (event_id, channel)
);
CREATE INDEX IF NOT EXISTS outcomes_by_time ON outcomes (at);
CREATE TABLE IF NOT EXISTS lanes (
    channel    TEXT    PRIMARY KEY,
    owner      TEXT    NOT NULL,
    token      BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    pacing     TEXT,
    broken     TEXT
);
";

/// Brings the database to [`VERSION`], creating it when new; refuses a newer one.
pub async fn upgrade(client: &mut Client) -> Result<(), String> {
    let tx = client.transaction().await.map_err(|e| e.to_string())?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(|e| e.to_string())?;
    tx.batch_execute(TABLES).await.map_err(|e| e.to_string())?;
    // From version 2: drop the columns of pre-version-2 bodies (always empty here); from
    // version 3: `recent` gains what the call page shows of each event.
    tx.batch_execute(
        "ALTER TABLE queue DROP COLUMN IF EXISTS body, DROP COLUMN IF EXISTS coalesce;
         ALTER TABLE dead_letters DROP COLUMN IF EXISTS body;
         ALTER TABLE recent ADD COLUMN IF NOT EXISTS shown TEXT;",
    )
    .await
    .map_err(|e| e.to_string())?;
    let found: Option<i32> =
        tx.query_opt("SELECT version FROM callrelay_schema", &[]).await.map_err(|e| e.to_string())?.map(|r| r.get(0));
    match found {
        Some(v) if v > VERSION => {
            return Err(format!(
                "it was written by a newer callrelay (store version {v}; this release knows up to {VERSION})"
            ))
        }
        Some(_) => {
            tx.execute("UPDATE callrelay_schema SET version = $1", &[&VERSION]).await.map_err(|e| e.to_string())?;
        }
        None => {
            tx.execute("INSERT INTO callrelay_schema (version) VALUES ($1)", &[&VERSION])
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    tx.commit().await.map_err(|e| e.to_string())
}
