-- The SQLite store's tables as version 2 (the release before call memory) created them.
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
);
CREATE INDEX IF NOT EXISTS seen_by_expiry ON seen (expires_at);
CREATE TABLE IF NOT EXISTS recent (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    INTEGER NOT NULL,
    call_id     TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    routes      TEXT    NOT NULL,
    channels    TEXT    NOT NULL,
    accepted_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS recent_by_event ON recent (event_id);
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
