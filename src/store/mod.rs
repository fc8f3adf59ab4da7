//! The durable store: accepted events, each channel's queue of entries pointing at them (the
//! dispatcher's work list, in acceptance order), dead letters, what each channel holds of a call,
//! each channel's lane lease, and the console's statistics. One trait per concern ([`Intake`],
//! [`Queue`], [`Calls`], [`Leases`], [`Stats`]; [`Store`] is all of them), two backends, each a
//! folder with a file per concern: embedded SQLite ([`sqlite::SqliteStore`], the default, one
//! relay) and PostgreSQL ([`postgres::PgStore`], shared by several relays).

pub mod holder;
pub mod postgres;
pub mod sqlite;

#[cfg(test)]
pub(crate) mod contract;

use async_trait::async_trait;

/// An accepted event, as the receiver commits it: the normalised event once, and a queue entry
/// for each channel its routes chose. Nothing is rendered yet; each channel's lane renders the
/// event with the configuration in force when it sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewEvent {
    /// The event's call id.
    pub call_id: String,
    /// `message`, `call_ended` or `test`.
    pub event_type: String,
    /// The normalised event as JSON (the template context).
    pub event: String,
    /// The channels to queue it for, in route order.
    pub channels: Vec<String>,
    /// The names of the routes that matched (kept with the recent events, for the console).
    pub routes: Vec<String>,
    /// Whether to keep it among the recent events (`admin.keep_events` is not zero).
    pub recent: bool,
    /// What it tells about its call, remembered with it (see [`Calls::call`]); `None` for an
    /// event of no call (`test`).
    pub call: Option<CallNote>,
    /// The call's `call_started`, committed (before this event, so queued ahead of it on every
    /// channel) only when this event is the first the store sees of its call.
    pub started: Option<Box<NewEvent>>,
    /// What the console's call page shows of it (compact JSON: caller, agent, the utterance or
    /// the summary's facts), kept with its recent row. A fraction of the event's size: the event
    /// itself is not written twice.
    pub shown: Option<String>,
}

/// What an accepted event tells about its call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallNote {
    /// The agent, when the event names it.
    pub agent_id: Option<String>,
    /// The caller, when the event names them.
    pub user_name: Option<String>,
    /// `call_data` as JSON, when the event has any.
    pub call_data: Option<String>,
    /// The event is an utterance (`message`).
    pub utterance: bool,
    /// The event is the call's `call_ended`.
    pub ended: bool,
    /// Whether to move the call's last-event time to now (every event does, but a busy call's
    /// are written at most every so often: see [`crate::calls::Recall::touch`]).
    pub touch: bool,
}

/// A call as the store remembers it: what its events told, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remembered {
    /// The call.
    pub call_id: String,
    /// The agent, from the first event that named it.
    pub agent_id: Option<String>,
    /// The caller, from the first event that named them.
    pub user_name: Option<String>,
    /// `call_data` as JSON, from the first event that had any.
    pub call_data: Option<String>,
    /// When its first event was accepted (Unix milliseconds).
    pub first_at_ms: i64,
    /// When its latest event was accepted (Unix milliseconds).
    pub last_at_ms: i64,
    /// How many `message` events it had.
    pub utterances: i64,
    /// When its `call_ended` was accepted.
    pub ended_at_ms: Option<i64>,
    /// When the relay gave up waiting for its end (`call_timed_out`).
    pub timed_out_at_ms: Option<i64>,
}

/// Makes a timed-out call's `call_timed_out` event: from the call as remembered and the
/// channels holding its thread or live transcript (which the event closes).
pub type MakeTimedOut = std::sync::Arc<dyn Fn(&Remembered, &[String]) -> NewEvent + Send + Sync>;

/// A recently accepted event and what became of each of its posts (the console's deliveries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentEvent {
    /// Its place among recent events (higher: accepted later; never reused).
    pub id: i64,
    /// Its call.
    pub call_id: String,
    /// Its type.
    pub event_type: String,
    /// The routes that matched.
    pub routes: Vec<String>,
    /// When it was accepted (Unix milliseconds).
    pub accepted_at_ms: i64,
    /// Each channel it was queued for, in route order, with its post's status.
    pub posts: Vec<PostStatus>,
    /// What the call page shows of the event (see [`NewEvent::shown`]; `None` for events kept
    /// by a release before it was).
    pub shown: Option<String>,
}

/// Where one event's post to one channel stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostStatus {
    /// The channel.
    pub channel: String,
    /// `waiting` (queued, not tried or held by a rate limit), `delivered`, `retrying` (failed
    /// attempts so far) or `dead_lettered`.
    pub status: String,
    /// Failed attempts.
    pub attempts: u32,
    /// The platform's last answer (or why it was dead-lettered).
    pub answer: Option<String>,
    /// When the status was recorded (Unix milliseconds).
    pub at_ms: Option<i64>,
}

/// Posts per channel and minute, for the console's chart and counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// The channel.
    pub channel: String,
    /// The minute (Unix milliseconds at its start).
    pub minute_ms: i64,
    /// Events delivered in that minute.
    pub delivered: u64,
    /// Events whose post failed in that minute (an attempt failed or it was dead-lettered).
    pub failed: u64,
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

/// A channel's queue entry: one event to post.
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
    /// What to post: the event to render, or a body rendered before the store's version 2.
    pub content: Content,
    /// When the event was accepted (Unix milliseconds).
    pub accepted_at_ms: i64,
    /// Failed attempts so far (429s do not count).
    pub attempts: u32,
    /// How many of the entry's posts were already delivered (an event the limits split into
    /// several posts continues where it stopped).
    pub sent_parts: u32,
}

/// What a queue entry posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The normalised event as JSON, rendered by the lane just before posting.
    Event(String),
    /// A body rendered at intake by a release before the store's version 2, posted as it is;
    /// `coalesce` says whether it may merge with its neighbours.
    Rendered {
        /// The exact JSON body.
        body: String,
        /// May be merged with neighbouring posts.
        coalesce: bool,
    },
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
    /// The body that failed, for dead letters from before the store's version 2.
    pub body: Option<String>,
    /// The event (rendered again by a replay, with the templates in force then).
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
    #[error("cannot open the store at `{path}` (key `{key}`): {message}")]
    Open {
        /// The configuration key naming it: `store.path` or `store.url`.
        key: &'static str,
        /// The database path, or the URL without its password.
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
    /// The write came from a lane whose lease on the channel was taken over by another relay:
    /// refused, so a relay that paused cannot overwrite the new holder's work.
    #[error("another relay now delivers channel `{0}`; this relay's write was refused")]
    Fenced(String),
}

/// A lane's hold on its channel: every write about the channel's queue carries it, and the store
/// refuses the write (with [`StoreError::Fenced`]) once another relay took the channel over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The channel.
    pub channel: String,
    /// The lease's fencing token: one more at each change of holder.
    pub token: i64,
}

/// A lease granted or renewed by [`Leases::lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The fencing token to write with.
    pub token: i64,
    /// The pacing state the previous holder saved (see [`Leases::save_pacing`]).
    pub pacing: Option<String>,
}

/// A channel's lane as the store knows it, for every relay's `/readyz` and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneState {
    /// The channel.
    pub channel: String,
    /// The relay holding it (see `serve`'s log line "holds the lanes of…").
    pub owner: String,
    /// The platform's answer that showed the channel is broken, if it is.
    pub broken: Option<String>,
}

/// Intake: committing accepted events and their once-keys, and whether a write would succeed now. Every method commits before it returns.
#[async_trait]
pub trait Intake: Send + Sync {
    /// Commits an event (when there is one to queue) and once-keys together, unless one of the
    /// keys is still remembered (then writes nothing). The receiver answers 200 only after this
    /// returns.
    async fn accept(&self, event: Option<NewEvent>, once: Vec<OnceKey>) -> Result<Accepted, StoreError>;
    /// Whether a write of about `bytes` would succeed now (for `/readyz`); nothing is kept.
    async fn ping(&self, bytes: usize) -> Result<(), StoreError>;
}

/// The lanes' queues and the dead letters. Every method commits before it returns.
#[async_trait]
pub trait Queue: Send + Sync {
    /// The oldest `limit` queue entries of a channel, in order.
    async fn pending(&self, channel: &str, limit: usize) -> Result<Vec<Queued>, StoreError>;
    /// Removes delivered entries (and events no entry points at any more).
    async fn delivered(&self, fence: &Fence, ids: Vec<i64>) -> Result<(), StoreError>;
    /// Replaces entries of one of the relay's own queues (events held there, such as those
    /// waiting for their call's lookup) by `events`, committed in order as accepted events are
    /// (queue entries, recent rows, what each tells about its call), in one transaction.
    async fn reroute(&self, fence: &Fence, ids: Vec<i64>, events: Vec<NewEvent>) -> Result<(), StoreError>;
    /// Records that the first `parts` posts of an entry were delivered.
    async fn parts_delivered(&self, fence: &Fence, id: i64, parts: u32) -> Result<(), StoreError>;
    /// Counts a failed attempt and records the platform's answer.
    async fn failed_attempt(&self, fence: &Fence, ids: Vec<i64>, answer: String) -> Result<(), StoreError>;
    /// Moves queue entries to the dead letters, each with its event.
    async fn dead_letter(&self, fence: &Fence, ids: Vec<i64>, reason: String) -> Result<(), StoreError>;
    /// Queue depth per channel with anything queued.
    async fn depths(&self) -> Result<Vec<Depth>, StoreError>;
    /// Dead letters, oldest first.
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError>;
    /// Replaces a dead letter by a fresh entry at the end of its channel's queue: its event, to be
    /// rendered again, or (from before version 2) its body as it was.
    async fn requeue(&self, dead_letter: i64) -> Result<(), StoreError>;
    /// Deletes dead letters that failed before `before_ms` (all when `None`); how many.
    async fn purge(&self, before_ms: Option<i64>) -> Result<usize, StoreError>;
    /// Channels with newly queued entries, as other relays commit them (PostgreSQL's
    /// LISTEN/NOTIFY). A hint only: lanes poll as well. `None` when the backend has none.
    fn wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }
}

/// What each channel holds of a call: its thread and its live transcript. Every method commits before it returns.
#[async_trait]
pub trait Calls: Send + Sync {
    /// The thread a call's posts go into on a channel (a Slack `ts`, a Discord thread id; empty
    /// when the call is posted flat), if one was started.
    async fn thread(&self, channel: &str, call_id: &str) -> Result<Option<String>, StoreError>;
    /// Remembers the thread a call's posts go into on the fence's channel.
    async fn set_thread(&self, fence: &Fence, call_id: &str, thread: String) -> Result<(), StoreError>;
    /// The call ended: forget its thread and transcript on the fence's channel at `forget_at_ms`
    /// (those whose time has come are forgotten now).
    async fn forget_call_at(&self, fence: &Fence, call_id: &str, forget_at_ms: i64) -> Result<(), StoreError>;
    /// The live transcript message of a call on a channel, if one was posted.
    async fn transcript(&self, channel: &str, call_id: &str) -> Result<Option<Transcript>, StoreError>;
    /// Saves a call's live transcript message on the fence's channel.
    async fn set_transcript(&self, fence: &Fence, call_id: &str, transcript: Transcript) -> Result<(), StoreError>;
    /// The call as remembered (what its events told; see [`NewEvent::call`]), if it is.
    async fn call(&self, call_id: &str) -> Result<Option<Remembered>, StoreError>;
    /// Gives up waiting for the end of calls whose last event was accepted before
    /// `idle_before_ms` and that have neither a `call_ended` nor a `call_timed_out`: marks each
    /// timed out and commits the event `make` makes of it, together (once per call, whichever
    /// relay gets there first). Returns the calls timed out (at most 100 per call).
    async fn time_out_calls(&self, idle_before_ms: i64, make: MakeTimedOut) -> Result<Vec<NewEvent>, StoreError>;
    /// Forgets calls whose last event was accepted before `before_ms` (their recent events go
    /// with the next [`Stats::forget_recent`] that has their time come).
    async fn forget_calls(&self, before_ms: i64) -> Result<(), StoreError>;
}

/// Lane leases with fencing tokens, the pacing and broken marks kept with them. Every method commits before it returns.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes or renews the lease on `channel`'s lane for `owner` until `ttl_ms` from now (by the
    /// database's clock). `held`: the token this owner holds, to renew it. Granted when the
    /// channel is free, its lease expired, or `held` is still current; otherwise `None`. A new
    /// holder gets a new token, which fences off the previous holder's writes. (SQLite, shared
    /// only on one machine, also grants a lease whose holder's process has ended: see
    /// [`holder::gone`].)
    async fn lease(
        &self,
        channel: &str,
        owner: &str,
        ttl_ms: i64,
        held: Option<i64>,
    ) -> Result<Option<Lease>, StoreError>;
    /// Gives a lease up at once (a relay stopping), so another relay takes the channel now.
    async fn release(&self, fence: &Fence) -> Result<(), StoreError>;
    /// Saves the lane's pacing state with its lease, for whoever holds the channel next.
    async fn save_pacing(&self, fence: &Fence, pacing: String) -> Result<(), StoreError>;
    /// Marks the channel broken with the platform's answer, for every relay to see.
    async fn set_broken(&self, fence: &Fence, why: String) -> Result<(), StoreError>;
    /// Forgets every broken mark (the configuration was reloaded: fixed URLs are tried again).
    async fn clear_broken(&self) -> Result<(), StoreError>;
    /// Every channel lane the store knows of.
    async fn lanes(&self) -> Result<Vec<LaneState>, StoreError>;
}

/// The console's recent events, post statuses and per-minute activity. Every method commits before it returns.
#[async_trait]
pub trait Stats: Send + Sync {
    /// The most recent `limit` accepted events (of one call, in order, when `call` is given; else
    /// newest first) with their posts' status, among those kept (see [`Stats::forget_recent`]).
    async fn recent(&self, call: Option<&str>, limit: usize) -> Result<Vec<RecentEvent>, StoreError>;
    /// Delivered and failed events per channel and minute since `since_ms`.
    async fn activity(&self, since_ms: i64) -> Result<Vec<Activity>, StoreError>;
    /// Forgets recent events accepted, and post statuses recorded, before `before_ms`, except
    /// those of calls still remembered (a call's page shows its whole conversation while the
    /// call is remembered).
    async fn forget_recent(&self, before_ms: i64) -> Result<(), StoreError>;
}

/// Durable storage: every part above, as one backend provides them (SQLite, PostgreSQL; each
/// implements one part per file). The relay shares one `Arc<dyn Store>`; a backend's contract
/// is the contract suite's (`store/contract.rs`).
pub trait Store: Intake + Queue + Calls + Leases + Stats {}

impl<T: Intake + Queue + Calls + Leases + Stats> Store for T {}

/// A call's live transcript on a channel: the message being edited and what it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// The message (Slack `ts`, Discord message id); empty when the next utterances must start
    /// a new message.
    pub message_id: String,
    /// The Discord thread the message is in.
    pub thread: Option<String>,
    /// 1 for the first message, then one more for each message that continues it.
    pub part: u32,
    /// The utterances the message shows, as a JSON array of the event's `message` objects.
    pub lines: String,
}

/// The store `config` names: PostgreSQL at `store.url`, else the SQLite file at `store.path`.
/// `serving`: this relay will deliver from it (on PostgreSQL: listen for other relays' wake-ups).
pub async fn open(config: &crate::config::StoreConfig, serving: bool) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(match &config.url {
        Some(url) => std::sync::Arc::new(postgres::PgStore::connect(url.expose(), serving).await?),
        None => {
            std::sync::Arc::new(sqlite::SqliteStore::open(&config.path, if serving { config.max_bytes } else { None })?)
        }
    })
}

/// The last recorded status of a post, by (event, channel): status, attempts, answer, time.
type Outcomes = std::collections::HashMap<(i64, String), (String, u32, Option<String>, i64)>;

/// `event` with a status for each of the channels in `channels` (a JSON list): the recorded one,
/// else `waiting`.
fn with_posts(mut event: RecentEvent, channels: &str, outcomes: &mut Outcomes) -> RecentEvent {
    let channels: Vec<String> = serde_json::from_str(channels).unwrap_or_default();
    event.posts = channels
        .into_iter()
        .map(|channel| match outcomes.remove(&(event.id, channel.clone())) {
            Some((status, attempts, answer, at)) => PostStatus { channel, status, attempts, answer, at_ms: Some(at) },
            None => PostStatus { channel, status: "waiting".into(), attempts: 0, answer: None, at_ms: None },
        })
        .collect();
    event
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
