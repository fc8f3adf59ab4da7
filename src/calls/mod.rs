//! The relay's memory of each call, the receiver's side: what a call told earlier fills its later
//! events before they are routed (Beyond Presence's `call_ended` names no agent), and whether the
//! call may be new (then its event carries a `call_started` for the store to commit if so). The
//! store holds the memory, shared by replicas and kept across restarts; this is a cache in front
//! of it, so an event of a call this relay knows costs no read. The application's workers make
//! `call_timed_out` events (`app::timeouts`) and ask the Beyond Presence API about calls whose
//! agent no event named (`app::lookups`).

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::event::{Event, EventType};
use crate::store::{Store, StoreError};

/// Calls kept in the cache; beyond it, the cache starts over (the store still knows them all).
const CACHED: usize = 50_000;

/// What this relay learned of recent calls.
#[derive(Default)]
pub struct Memory(Mutex<HashMap<String, Known>>);

/// One call as this relay knows it.
#[derive(Debug, Clone, Default)]
struct Known {
    agent_id: Option<String>,
    user_name: Option<String>,
    call_data: Map<String, Value>,
    lookup: Lookup,
    /// When this relay last moved the call's last-event time in the store.
    touched: Option<std::time::Instant>,
}

/// Where the call's lookup in the Beyond Presence API stands on this relay.
#[derive(Debug, Clone, Default)]
enum Lookup {
    /// None asked for.
    #[default]
    None,
    /// Events of the call are held for it: later ones wait behind them, in order.
    Pending,
    /// Answered (the API's call object; empty when it did not answer in time).
    Done(Map<String, Value>),
}

impl Known {
    fn complete(&self) -> bool {
        self.agent_id.is_some() && self.user_name.is_some() && !self.call_data.is_empty()
    }

    /// Fills what `event` lacks.
    fn fill(&self, event: &mut Event) {
        if event.agent_id.is_none() {
            event.agent_id.clone_from(&self.agent_id);
        }
        if event.user_name.is_none() {
            event.user_name.clone_from(&self.user_name);
        }
        if event.call_data.is_empty() {
            event.call_data.clone_from(&self.call_data);
        }
        if let Lookup::Done(answer) = &self.lookup {
            enrich(event, answer);
        }
    }

    /// Learns what `event` says that this does not know yet.
    fn learn(&mut self, event: &Event) {
        if self.agent_id.is_none() {
            self.agent_id.clone_from(&event.agent_id);
        }
        if self.user_name.is_none() {
            self.user_name.clone_from(&event.user_name);
        }
        if self.call_data.is_empty() {
            self.call_data.clone_from(&event.call_data);
        }
    }
}

impl Memory {
    /// Fills `event` (agent, caller, `call_data`) from what its call told earlier: from this
    /// relay's cache, else the store (after a restart, or when another replica took the call's
    /// earlier events); says what this relay knows of the call (see [`Recall`]). A `message` of
    /// a known call never waits on the store; any other event does when the cache lacks
    /// something the store may know. `end_after`: `calls.end_after`, for [`Recall::touch`].
    pub async fn recall(
        &self,
        store: &dyn Store,
        event: &mut Event,
        end_after: std::time::Duration,
    ) -> Result<Recall, StoreError> {
        if event.call_id.is_empty() || event.event_type == EventType::Test {
            return Ok(Recall::default());
        }
        let (recall, ask) = {
            let mut known = self.0.lock().expect("not poisoned");
            match known.get_mut(&event.call_id) {
                None => (Recall { may_start: true, news: true, touch: true }, true),
                Some(call) => {
                    let news = (event.agent_id.is_some() && call.agent_id.is_none())
                        || (event.user_name.is_some() && call.user_name.is_none())
                        || (!event.call_data.is_empty() && call.call_data.is_empty());
                    call.fill(event);
                    // A busy call's time moves at most every so often (see `Recall::touch`).
                    let every = (end_after / 4).min(std::time::Duration::from_secs(1));
                    let now = std::time::Instant::now();
                    let touch = call.touched.is_none_or(|t| now.duration_since(t) >= every);
                    if touch {
                        call.touched = Some(now);
                    }
                    let ask = !call.complete() && event.event_type != EventType::Message;
                    (Recall { may_start: false, news, touch }, ask)
                }
            }
        };
        let lacking = event.agent_id.is_none() || event.user_name.is_none() || event.call_data.is_empty();
        if ask && lacking {
            if let Some(call) = store.call(&event.call_id).await? {
                let stored = Known {
                    agent_id: call.agent_id,
                    user_name: call.user_name,
                    call_data: call.call_data.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default(),
                    ..Known::default()
                };
                stored.fill(event);
            }
        }
        Ok(recall)
    }

    /// Whether `event` (filled) must wait for its call's lookup: no event of its call named the
    /// agent and the call was not looked up yet, or earlier events of the call wait already.
    pub fn needs_lookup(&self, event: &Event) -> bool {
        if event.call_id.is_empty() || event.event_type == EventType::Test {
            return false;
        }
        match self.0.lock().expect("not poisoned").get(&event.call_id).map(|k| &k.lookup) {
            Some(Lookup::Pending) => true,
            Some(Lookup::Done(_)) => false,
            Some(Lookup::None) | None => event.agent_id.is_none(),
        }
    }

    /// After `event` was committed: its call has started, and is known as `event` tells it;
    /// `held`: it waits for its call's lookup.
    pub fn learned(&self, event: &Event, held: bool) {
        if event.call_id.is_empty() || event.event_type == EventType::Test {
            return;
        }
        let mut known = self.0.lock().expect("not poisoned");
        if known.len() >= CACHED && !known.contains_key(&event.call_id) {
            known.clear();
        }
        let call = known.entry(event.call_id.clone()).or_default();
        call.learn(event);
        if held && matches!(call.lookup, Lookup::None) {
            call.lookup = Lookup::Pending;
        }
    }

    /// The call was looked up (`answer`: the API's call object, empty without one): its held
    /// events were routed, and later ones carry the answer.
    pub fn looked_up(&self, call_id: &str, answer: &Map<String, Value>) {
        let mut known = self.0.lock().expect("not poisoned");
        let call = known.entry(call_id.to_owned()).or_default();
        if call.agent_id.is_none() {
            call.agent_id = answer.get("agent_id").and_then(Value::as_str).map(str::to_owned);
        }
        call.lookup = Lookup::Done(answer.clone());
    }
}

/// What this relay knows of an event's call (see [`Memory::recall`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recall {
    /// This relay has not seen the call: it may be new, so the event carries its `call_started`.
    pub may_start: bool,
    /// The event tells something of its call (agent, caller, `call_data`) this relay did not know
    /// yet: the store is told (otherwise only the event's kind and time are, which is cheaper).
    pub news: bool,
    /// The event moves the call's last-event time in the store: the first of the call since a
    /// quarter of `calls.end_after` (a second at most), so a busy call's utterances do not each
    /// rewrite the index of open calls. The stored time is then at most that much behind the
    /// call's last event, so a call may time out that much early (a second of 30 minutes).
    pub touch: bool,
}

/// Offers the API's answer about the call to routes and templates as `call.*`, and its agent as
/// `agent_id` when no event named one.
pub fn enrich(event: &mut Event, answer: &Map<String, Value>) {
    for (k, v) in answer {
        event.call.insert(k.clone(), v.clone());
    }
    if event.agent_id.is_none() {
        event.agent_id = answer.get("agent_id").and_then(Value::as_str).map(str::to_owned);
    }
}
