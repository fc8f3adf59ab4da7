//! The running application, which both listeners serve: the configuration snapshot in force
//! (swapped whole on reload), the store, the delivery lanes, reload counters, the last events
//! accepted, what it knows of recent calls, and its workers (live reload, call time-outs,
//! Beyond Presence lookups). The webhook receiver ([`crate::server`]) and the console
//! ([`crate::console`]) are two siblings over it.

mod lookups;
mod reload;
mod timeouts;

use std::sync::Arc;

use actix_web::web;
use arc_swap::ArcSwap;

use crate::auth::{self, Authenticator};
use crate::dispatch::Dispatcher;
use crate::setup::Config;
use crate::store::Store;
use crate::telemetry;

pub use reload::{spawn as watch_for_reloads, Status};

/// The configuration in force and what is compiled from it; swapped whole on reload, so every
/// request reads one consistent snapshot.
pub struct Snapshot {
    pub config: Arc<Config>,
    pub auth: Authenticator,
}

/// What every request handler reads.
pub struct State {
    pub snapshot: ArcSwap<Snapshot>,
    pub store: Arc<dyn Store>,
    pub dispatcher: Arc<Dispatcher>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub reloads: Status,
    /// Size of the last body the store refused (0 once it takes writes again): `/readyz` probes
    /// with at least this much, so readiness tracks what accepting actually needs.
    pub refused_bytes: std::sync::atomic::AtomicUsize,
    /// The last events this relay accepted, for the console's playground.
    pub last_events: LastEvents,
    /// What this relay knows of recent calls (in front of the store's call memory).
    pub calls: crate::calls::Memory,
    /// Wakes the Beyond Presence lookups when an event is held for one.
    pub lookups: Arc<tokio::sync::Notify>,
}

/// The last [`LastEvents::KEPT`] events this relay accepted (normalised JSON), in memory: the
/// console's playground offers them as input. Not in the store, so a full store cannot be kept
/// full by them; each replica offers the events it took itself.
#[derive(Default)]
pub struct LastEvents(std::sync::Mutex<(u64, std::collections::VecDeque<LastEvent>)>);

/// One accepted event, as the playground offers it.
#[derive(Debug, Clone)]
pub struct LastEvent {
    /// Its number among the events this relay accepted since it started.
    pub seq: u64,
    /// Its type.
    pub event_type: String,
    /// Its call.
    pub call_id: String,
    /// The normalised event as JSON.
    pub event: String,
}

impl LastEvents {
    /// How many are kept.
    pub const KEPT: usize = 20;

    /// Keeps an accepted event, forgetting the oldest beyond [`LastEvents::KEPT`].
    pub fn push(&self, event_type: String, call_id: String, event: String) {
        let mut kept = self.0.lock().expect("not poisoned");
        kept.0 += 1;
        let seq = kept.0;
        kept.1.push_front(LastEvent { seq, event_type, call_id, event });
        kept.1.truncate(Self::KEPT);
    }

    /// Newest first.
    pub fn list(&self) -> Vec<LastEvent> {
        self.0.lock().expect("not poisoned").1.iter().cloned().collect()
    }
}

/// Lists every metric family at zero for this configuration's channels (see
/// [`telemetry::families_ready`]).
pub(crate) fn metric_families_ready(config: &Config) {
    telemetry::families_ready(config.channels.keys().map(String::as_str), &auth::Denied::ALL.map(auth::Denied::as_str));
}

impl State {
    /// The application for `config` over `store`: starts the lanes (which resume whatever was
    /// queued before).
    pub async fn start(config: Config, store: Arc<dyn Store>) -> web::Data<State> {
        let metrics = telemetry::metrics_handle();
        metric_families_ready(&config);
        for (name, why) in config.disabled_channels() {
            telemetry::channel_disabled(name, why);
        }
        let config = Arc::new(config);
        let dispatcher = Arc::new(Dispatcher::start(&config, store.clone()).await);
        let state = web::Data::new(State {
            snapshot: ArcSwap::from_pointee(Snapshot { auth: Authenticator::new(&config.auth), config }),
            store,
            dispatcher,
            metrics,
            reloads: Status::default(),
            refused_bytes: Default::default(),
            last_events: Default::default(),
            calls: Default::default(),
            lookups: Default::default(),
        });
        timeouts::spawn(Arc::downgrade(&state.clone().into_inner()));
        lookups::spawn(Arc::downgrade(&state.clone().into_inner()));
        state
    }
}
