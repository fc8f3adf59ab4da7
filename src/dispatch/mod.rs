//! Dispatch: one ordered lane per channel, driven by the durable store. A slow, failing or
//! rate-limited channel never delays another; within a channel, posts leave in acceptance order.

pub mod backoff;
mod lane;
pub mod pacing;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::sinks::Sink;
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

    /// Why `channel` is broken, if it is.
    pub fn reason(&self, channel: &str) -> Option<String> {
        self.0.lock().expect("not poisoned").get(channel).cloned()
    }

    /// Every broken channel.
    pub fn all(&self) -> BTreeMap<String, String> {
        self.0.lock().expect("not poisoned").clone()
    }
}

/// The running lanes.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    wakes: BTreeMap<String, Arc<Notify>>,
    broken: Broken,
    stop: watch::Sender<bool>,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Dispatcher {
    /// Starts a lane for every channel with a sink. Queued posts of channels no longer configured
    /// are moved to the dead letters (replayable once the channel is back).
    pub async fn start(config: &Config, store: Arc<dyn Store>, sinks: BTreeMap<String, Arc<dyn Sink>>) -> Dispatcher {
        if let Ok(depths) = store.depths().await {
            for d in depths.iter().filter(|d| !config.channels.contains_key(&d.channel)) {
                if let Ok(q) = store.pending(&d.channel, usize::MAX >> 1).await {
                    let ids = q.iter().map(|q| q.id).collect();
                    let why = format!("channel `{}` is no longer configured", d.channel);
                    if store.dead_letter(ids, why.clone()).await.is_ok() {
                        telemetry::dead_lettered(&d.channel, q.len(), &why);
                    }
                }
            }
        }
        let (stop, _) = watch::channel(false);
        let broken = Broken::default();
        let policy = RetryPolicy::from_config(&config.delivery);
        let mut wakes = BTreeMap::new();
        let mut handles = Vec::new();
        for (name, sink) in sinks {
            let channel = &config.channels[&name];
            let wake = Arc::new(Notify::new());
            let lane = lane::Lane {
                channel: name.clone(),
                platform: channel.platform,
                sink,
                store: store.clone(),
                policy,
                pacer: Pacer::new(&channel.rate_limit),
                coalesce: channel.coalesce,
                wake: wake.clone(),
                stop: stop.subscribe(),
                broken: broken.clone(),
            };
            handles.push(tokio::spawn(lane.run()));
            wakes.insert(name, wake);
        }
        Dispatcher { store, wakes, broken, stop, handles: Mutex::new(handles) }
    }

    /// Tells a channel's lane that new posts were committed.
    pub fn wake(&self, channel: &str) {
        if let Some(w) = self.wakes.get(channel) {
            w.notify_one();
        }
    }

    /// Broken channels and why.
    pub fn broken(&self) -> BTreeMap<String, String> {
        self.broken.all()
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
        let _ = self.stop.send(true);
        let handles: Vec<_> = std::mem::take(&mut *self.handles.lock().expect("not poisoned"));
        let all = futures_join(handles);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(
                "A post was still in flight at the end of the shutdown grace period; it will be sent again."
            );
        }
    }
}

async fn futures_join(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}
