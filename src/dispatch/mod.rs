//! Dispatch: one ordered lane per channel, driven by the durable store. A slow, failing or
//! rate-limited channel never delays another; within a channel, posts leave in acceptance order.
//! With several relays on one store, each channel's lane runs on whichever relay holds its lease
//! ([`leases`]).

pub mod backoff;
mod lane;
mod leases;
pub mod pacing;
mod threads;
mod transcript;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::setup::Config;
use crate::store::Store;
use crate::telemetry;
use backoff::RetryPolicy;
use pacing::Pacer;

/// Channels found broken (webhook deleted, archived, bad token), with the platform's answer.
/// Shared by the lanes and `/readyz`; cleared by a reload or a restart.
#[derive(Debug, Clone, Default)]
pub struct Broken(Arc<Mutex<BTreeMap<String, String>>>);

impl Broken {
    fn mark(&self, channel: &str, why: &str) {
        self.0.lock().expect("not poisoned").insert(channel.to_owned(), why.to_owned());
    }

    /// Takes the marks every relay shares through the store (channels newly found broken by
    /// another relay are reported here too).
    fn sync(&self, marks: BTreeMap<String, String>) {
        let mut map = self.0.lock().expect("not poisoned");
        for (channel, why) in &marks {
            if !map.contains_key(channel) {
                telemetry::channel_broken(channel, why);
            }
        }
        for channel in map.keys().filter(|c| !marks.contains_key(*c)) {
            telemetry::channel_repaired(channel);
        }
        *map = marks;
    }

    /// Why `channel` is broken, if it is.
    pub fn reason(&self, channel: &str) -> Option<String> {
        self.0.lock().expect("not poisoned").get(channel).cloned()
    }

    /// Every broken channel.
    pub fn all(&self) -> BTreeMap<String, String> {
        self.0.lock().expect("not poisoned").clone()
    }

    fn clear(&self) {
        let mut map = self.0.lock().expect("not poisoned");
        for channel in map.keys() {
            telemetry::channel_repaired(channel);
        }
        map.clear();
    }
}

/// Channels whose lane is waiting (a platform's 429, a retry's backoff, the pacing budget) for
/// longer than a moment: why, and until when (Unix milliseconds). For the console.
#[derive(Debug, Clone, Default)]
pub struct Paused(Arc<Mutex<BTreeMap<String, (String, i64)>>>);

impl Paused {
    fn set(&self, channel: &str, why: &str, until_ms: i64) {
        self.0.lock().expect("not poisoned").insert(channel.to_owned(), (why.to_owned(), until_ms));
    }

    fn clear(&self, channel: &str) {
        self.0.lock().expect("not poisoned").remove(channel);
    }

    /// Why `channel`'s lane waits and until when, if it still does.
    pub fn get(&self, channel: &str) -> Option<(String, i64)> {
        self.0.lock().expect("not poisoned").get(channel).filter(|(_, until)| *until > crate::store::now_ms()).cloned()
    }
}

/// The running lanes, replaced as a whole when the configuration is reloaded.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    broken: Broken,
    paused: Paused,
    lanes: Mutex<Lanes>,
    /// This relay's name as lease holder.
    owner: String,
}

struct Lanes {
    wakes: BTreeMap<String, Arc<Notify>>,
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
    /// Stops the lease keeper, once the lanes have stopped (it then releases the leases).
    keeper_stop: watch::Sender<bool>,
    keeper: Option<JoinHandle<()>>,
    /// How long a post may take (the lanes' request timeout), for stopping them.
    request_timeout: Duration,
}

impl Dispatcher {
    /// Starts a lane for every channel that can send. Queued posts of channels no longer
    /// configured are moved to the dead letters (replayable once the channel is back).
    pub async fn start(config: &Arc<Config>, store: Arc<dyn Store>) -> Dispatcher {
        let broken = Broken::default();
        let owner = leases::owner_name();
        tracing::info!(owner = %owner, "Delivering as this lease holder.");
        dead_letter_orphans(config, &store, &owner).await;
        let paused = Paused::default();
        let lanes = spawn_lanes(config, &store, &broken, &paused, &owner);
        Dispatcher { store, broken, paused, lanes: Mutex::new(lanes), owner }
    }

    /// Replaces every lane with lanes for `config`: posts in flight finish first (a lane still
    /// posting after its request timeout is abandoned, and that post may be sent again). Broken
    /// channels are forgotten, so a fixed URL is tried again. Nothing queued is touched.
    pub async fn reload(&self, config: &Arc<Config>) {
        let old = std::mem::replace(&mut *self.lanes.lock().expect("not poisoned"), Lanes::empty());
        let limit = old.request_timeout + SHUTDOWN_EXTRA;
        old.stop(limit).await;
        self.broken.clear();
        if let Err(e) = self.store.clear_broken().await {
            telemetry::store_failed("forget broken channels", &e.to_string());
        }
        dead_letter_orphans(config, &self.store, &self.owner).await;
        let fresh = spawn_lanes(config, &self.store, &self.broken, &self.paused, &self.owner);
        *self.lanes.lock().expect("not poisoned") = fresh;
    }

    /// Tells a channel's lane that new posts were committed.
    pub fn wake(&self, channel: &str) {
        if let Some(w) = self.lanes.lock().expect("not poisoned").wakes.get(channel) {
            w.notify_one();
        }
    }

    /// Broken channels and why.
    pub fn broken(&self) -> BTreeMap<String, String> {
        self.broken.all()
    }

    /// Why a channel's lane on this relay waits and until when (Unix milliseconds), if it does.
    pub fn paused(&self, channel: &str) -> Option<(String, i64)> {
        self.paused.get(channel)
    }

    /// This relay's name as lease holder (as the store's `lanes` table shows it).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The store the lanes read.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Waits until nothing is queued for any channel, or `limit` passes; whether it emptied.
    pub async fn idle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.store.depths().await.is_ok_and(|d| d.is_empty()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the lanes: posts in flight finish (within `grace`); everything else stays queued for
    /// the next start.
    pub async fn stop(&self, grace: Duration) {
        let lanes = std::mem::replace(&mut *self.lanes.lock().expect("not poisoned"), Lanes::empty());
        lanes.stop(grace).await;
    }
}

/// Added to the request timeout when waiting for lanes to stop.
const SHUTDOWN_EXTRA: Duration = Duration::from_secs(1);

impl Lanes {
    /// No lanes (between stopping the old ones and starting new ones).
    fn empty() -> Lanes {
        Lanes {
            wakes: BTreeMap::new(),
            stop: watch::channel(false).0,
            handles: Vec::new(),
            keeper_stop: watch::channel(false).0,
            keeper: None,
            request_timeout: Duration::ZERO,
        }
    }

    /// Asks every lane to stop and waits up to `limit` for posts in flight; lanes still running
    /// then are aborted.
    async fn stop(self, limit: Duration) {
        let _ = self.stop.send(true);
        let mut handles = self.handles;
        let all = async {
            for h in handles.iter_mut() {
                let _ = h.await;
            }
        };
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("A post was still in flight when its lane was stopped; it will be sent again.");
            handles.iter().for_each(JoinHandle::abort);
        }
        // Only now: another relay may take the channels over without repeating a post in flight.
        let _ = self.keeper_stop.send(true);
        if let Some(keeper) = self.keeper {
            if tokio::time::timeout(SHUTDOWN_EXTRA, keeper).await.is_err() {
                tracing::debug!("The leases were not all released in time; they expire by themselves.");
            }
        }
    }
}

fn spawn_lanes(config: &Arc<Config>, store: &Arc<dyn Store>, broken: &Broken, paused: &Paused, owner: &str) -> Lanes {
    let (stop, _) = watch::channel(false);
    let (keeper_stop, _) = watch::channel(false);
    let mut slots = BTreeMap::new();
    let policy = RetryPolicy::from_config(&config.delivery);
    let client = crate::platforms::http_client(config.delivery.request_timeout);
    let mut wakes = BTreeMap::new();
    let mut handles = Vec::new();
    let mut edit_budgets = edit_budgets(config);
    for channel in config.channels.values() {
        let Some(sink) = crate::platforms::sink_for(channel, &client) else { continue };
        let edit_budget = edit_budgets.remove(&channel.name);
        let wake = Arc::new(Notify::new());
        let (slot, lease) = watch::channel(None);
        slots.insert(channel.name.clone(), slot);
        let lane = lane::Lane {
            channel: channel.name.clone(),
            config: config.clone(),
            sink,
            store: store.clone(),
            policy,
            pacer: Pacer::new(&channel.rate_limit),
            wake: wake.clone(),
            stop: stop.subscribe(),
            broken: broken.clone(),
            paused: paused.clone(),
            wait_reason: "pacing",
            no_threads: false,
            edit_budget,
            lease,
            fence: crate::store::Fence { channel: channel.name.clone(), token: 0 },
            fenced_off: None,
            store_wakes: store.wakeups(),
        };
        handles.push(tokio::spawn(lane.run()));
        wakes.insert(channel.name.clone(), wake);
    }
    let keeper = leases::Keeper {
        store: store.clone(),
        owner: owner.to_owned(),
        ttl: config.store.lease,
        slots,
        broken: broken.clone(),
        stop: keeper_stop.subscribe(),
        keep_recent: config.admin.keep_events,
    };
    let keeper = Some(tokio::spawn(keeper.run()));
    Lanes { wakes, stop, handles, keeper_stop, keeper, request_timeout: config.delivery.request_timeout }
}

/// Edit budgets a platform shares across channels (Slack's `chat.update` is Tier 3 per app token):
/// one budget per key, shared by every channel with that key (by channel name).
fn edit_budgets(config: &Config) -> BTreeMap<String, Arc<Mutex<Pacer>>> {
    let mut by_key: BTreeMap<String, Arc<Mutex<Pacer>>> = BTreeMap::new();
    let mut by_channel = BTreeMap::new();
    for channel in config.channels.values() {
        let Ok(target) = &channel.target else { continue };
        if let Some((key, windows)) = crate::platforms::rules(channel.platform).shared_edit_budget(target) {
            let budget = by_key.entry(key).or_insert_with(|| Arc::new(Mutex::new(Pacer::new(&windows))));
            by_channel.insert(channel.name.clone(), budget.clone());
        }
    }
    by_channel
}

/// Moves the queues of channels `config` no longer has to the dead letters, each under the
/// channel's lease (a channel another relay still serves, in the middle of a rolling change of
/// configuration, is left to it).
async fn dead_letter_orphans(config: &Config, store: &Arc<dyn Store>, owner: &str) {
    let Ok(depths) = store.depths().await else { return };
    // The relay's own queues (`@…`, such as the lookup queue) are no channels.
    for d in depths.iter().filter(|d| !config.channels.contains_key(&d.channel) && !d.channel.starts_with('@')) {
        let Some(fence) = leases::take_once(store, &d.channel, owner, config.store.lease).await else { continue };
        if let Ok(q) = store.pending(&d.channel, usize::MAX >> 1).await {
            let ids = q.iter().map(|q| q.id).collect();
            let why = format!("channel `{}` is no longer configured", d.channel);
            if store.dead_letter(&fence, ids, why.clone()).await.is_ok() {
                telemetry::dead_lettered(&d.channel, q.len(), &why);
            }
        }
        let _ = store.release(&fence).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_edits_share_one_budget_per_token_across_channels() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("relay.toml");
        let app = |name: &str, token: &str| {
            format!("[channels.{name}]\nkind = \"slack\"\nbot_token = \"{token}\"\nchannel = \"C0123ABCD\"\n")
        };
        let toml = [app("a", "xoxb-one"), app("b", "xoxb-one"), app("c", "xoxb-two")].concat()
            + "[channels.hook]\nkind = \"slack\"\nwebhook_url = \"https://hooks.slack.com/services/T/B/x\"\n"
            + "[[routes]]\nchannels = [\"a\", \"b\", \"c\", \"hook\"]\n";
        std::fs::write(&file, toml).unwrap();
        let config = crate::setup::load(&crate::config::ConfigSource::File(file)).unwrap();
        let budgets = edit_budgets(&config);
        assert!(Arc::ptr_eq(&budgets["a"], &budgets["b"]), "one token, one budget");
        assert!(!Arc::ptr_eq(&budgets["a"], &budgets["c"]), "another token, another budget");
        assert!(!budgets.contains_key("hook"), "a webhook cannot edit");
        // The shared budget holds the 51st edit of a minute, whichever channel makes it.
        let now = tokio::time::Instant::now();
        for i in 0..50 {
            let budget = if i % 2 == 0 { &budgets["a"] } else { &budgets["b"] };
            assert!(budget.lock().unwrap().ready_at(now) <= now);
            budget.lock().unwrap().record(now);
        }
        assert!(budgets["b"].lock().unwrap().ready_at(now) > now);
        assert!(budgets["c"].lock().unwrap().ready_at(now) <= now);
    }
}
