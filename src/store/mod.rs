//! The durable store: queued deliveries (the dispatcher's work list, in acceptance order) and dead
//! letters. A small trait, so a networked backend for several replicas can follow; the default is
//! embedded SQLite ([`sqlite::SqliteStore`]).

pub mod sqlite;

use async_trait::async_trait;

/// A post to queue, as the receiver commits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// Channel name.
    pub channel: String,
    /// The event's call id.
    pub call_id: String,
    /// `message`, `call_ended` or `test`.
    pub event_type: String,
    /// The exact JSON body to post.
    pub body: String,
    /// Whether it may be merged with neighbouring posts of the same channel (live messages).
    pub coalesce: bool,
}

/// Something that could not be delivered, recorded as accepted (render failures at intake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeadLetter {
    /// Channel name.
    pub channel: String,
    /// The event's call id.
    pub call_id: String,
    /// The event's type.
    pub event_type: String,
    /// The body, when one was rendered.
    pub body: Option<String>,
    /// The normalised event as JSON, when there is no body (so a replay can render it again).
    pub event: Option<String>,
    /// Why it is here.
    pub reason: String,
}

/// A key to remember until `expires_at_ms`: a second event bearing it within that time is a
/// duplicate (content dedup) or a replay (a `webhook-id` seen before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnceKey {
    /// The key, e.g. `event:<sha256>` or `webhook-id:<id>`.
    pub key: String,
    /// When it may be forgotten (Unix milliseconds).
    pub expires_at_ms: i64,
}

/// What `accept` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Committed.
    New,
    /// Nothing written: this key was already remembered.
    Seen(String),
}

/// A queued post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Position in the queue; higher was accepted later.
    pub id: i64,
    /// Channel name.
    pub channel: String,
    /// The event's call id.
    pub call_id: String,
    /// The event's type.
    pub event_type: String,
    /// The exact JSON body.
    pub body: String,
    /// May be merged with neighbours.
    pub coalesce: bool,
    /// When it was accepted (Unix milliseconds).
    pub accepted_at_ms: i64,
    /// Failed attempts so far (429s do not count).
    pub attempts: u32,
}

/// A dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its id, for `dlq replay`.
    pub id: i64,
    /// Channel name.
    pub channel: String,
    /// The event's call id.
    pub call_id: String,
    /// The event's type.
    pub event_type: String,
    /// The body that failed, if one was rendered.
    pub body: Option<String>,
    /// The event, when the body could not be rendered.
    pub event: Option<String>,
    /// Why it is here: the platform's last answer, or the render error.
    pub reason: String,
    /// Attempts made.
    pub attempts: u32,
    /// When the event was accepted (Unix milliseconds).
    pub accepted_at_ms: i64,
    /// When it was given up on (Unix milliseconds).
    pub failed_at_ms: i64,
}

/// Queue depth of one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depth {
    /// Channel name.
    pub channel: String,
    /// Posts waiting.
    pub pending: u64,
    /// When the oldest was accepted (Unix milliseconds).
    pub oldest_ms: Option<i64>,
}

/// Why the store could not do something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or created.
    #[error("cannot open the store at `{path}` (key `store.path`): {message}")]
    Open {
        /// The database path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The store reached `store.max_bytes` or the disk is full.
    #[error("the store is full (store.max_bytes or the disk)")]
    Full,
    /// Any other database failure.
    #[error("the store failed: {0}")]
    Failed(String),
    /// No dead letter with that id.
    #[error("no dead letter with id {0}")]
    NoSuchDeadLetter(i64),
}

/// Durable storage of deliveries and dead letters. Every method commits before it returns.
#[async_trait]
pub trait Store: Send + Sync {
    /// Commits an event's deliveries, intake dead letters and once-keys together, unless one of
    /// the keys is still remembered (then writes nothing). The receiver answers 200 only after
    /// this returns.
    async fn accept(
        &self,
        deliveries: Vec<NewDelivery>,
        dead: Vec<NewDeadLetter>,
        once: Vec<OnceKey>,
    ) -> Result<Accepted, StoreError>;
    /// The oldest `limit` queued posts of a channel, in order.
    async fn pending(&self, channel: &str, limit: usize) -> Result<Vec<Queued>, StoreError>;
    /// Removes delivered posts.
    async fn delivered(&self, ids: Vec<i64>) -> Result<(), StoreError>;
    /// Counts a failed attempt and records the platform's answer.
    async fn failed_attempt(&self, ids: Vec<i64>, answer: String) -> Result<(), StoreError>;
    /// Moves queued posts to the dead letters.
    async fn dead_letter(&self, ids: Vec<i64>, reason: String) -> Result<(), StoreError>;
    /// Queue depth per channel with anything queued.
    async fn depths(&self) -> Result<Vec<Depth>, StoreError>;
    /// Dead letters, oldest first.
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError>;
    /// Replaces a dead letter by fresh queued posts at the end of its channel's queue.
    async fn requeue(&self, dead_letter: i64, bodies: Vec<String>) -> Result<(), StoreError>;
    /// Deletes dead letters that failed before `before_ms` (all when `None`); how many.
    async fn purge(&self, before_ms: Option<i64>) -> Result<usize, StoreError>;
    /// Whether a write of about `bytes` would succeed now (for `/readyz`); nothing is kept.
    async fn ping(&self, bytes: usize) -> Result<(), StoreError>;
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
