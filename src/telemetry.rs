//! Logs and counters. Each happening has one function here that writes the log line and updates the
//! metric together, so the two never disagree. Channel labels are names, never URLs.

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;
use crate::event::EventType;
use crate::render::RenderError;

/// Installs the global log subscriber: `RUST_LOG` filtering (default `info`), pretty or JSON lines,
/// on standard error. Safe to call twice (the second call does nothing).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The process-wide Prometheus recorder, installed on first use (several relays in one process,
/// as in tests, share it).
pub fn metrics_handle() -> metrics_exporter_prometheus::PrometheusHandle {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            const LATENCY: [f64; 14] =
                [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY)
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("Another metrics recorder is installed; /metrics will be empty.");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("callrelay_events_received_total", "Requests on the webhook path, by event type and outcome.");
    describe_counter!(
        "callrelay_deliveries_total",
        "Events' posts by channel and outcome (delivered, channel_disabled)."
    );
    describe_counter!(
        "callrelay_posts_total",
        "Attempts to post, by channel and outcome (delivered, failed, rate_limited)."
    );
    describe_histogram!("callrelay_delivery_latency_seconds", "Time from acceptance to delivery.");
    describe_gauge!("callrelay_queue_depth", "Posts waiting per channel.");
    describe_gauge!("callrelay_queue_oldest_age_seconds", "Age of the oldest waiting post per channel.");
    describe_counter!("callrelay_dead_letters_total", "Posts moved to the dead letters, by channel.");
    describe_histogram!("callrelay_rate_limit_wait_seconds", "Waits ordered by a platform's 429, by channel.");
    describe_histogram!("callrelay_pacing_wait_seconds", "Waits to stay within a channel's budget.");
    describe_counter!("callrelay_render_errors_total", "Template failures, by channel.");
    describe_counter!("callrelay_duplicates_dropped_total", "Identical events not forwarded again.");
    describe_counter!("callrelay_auth_failures_total", "Requests refused with 401, by reason.");
    describe_counter!("callrelay_store_errors_total", "Store reads and writes that failed.");
    describe_gauge!("callrelay_channel_broken", "1 while a channel's webhook is known to be gone.");
    describe_gauge!("callrelay_lane_held", "1 while this relay holds the channel's lane lease (sends for it).");
    describe_gauge!("callrelay_config_last_reload_successful", "1 if the last configuration load succeeded.");
    describe_gauge!(
        "callrelay_config_last_reload_success_timestamp_seconds",
        "When the running configuration was loaded."
    );
}

/// Registers every family with each of its known label values at zero (each channel; each event
/// type; each authentication reason), so `/metrics` lists them before anything has happened and a
/// `rate()` alert reads 0 rather than "no data". Called at start and after every reload (for the
/// channels it adds). Registering never changes a value already counted.
pub fn families_ready<'a>(channels: impl IntoIterator<Item = &'a str>, auth_reasons: &[&'static str]) {
    for t in EventType::ALL {
        counter!("callrelay_events_received_total", "type" => t.as_str(), "outcome" => "accepted").increment(0);
        counter!("callrelay_duplicates_dropped_total", "type" => t.as_str()).increment(0);
    }
    counter!("callrelay_events_received_total", "type" => "unknown", "outcome" => "ignored").increment(0);
    counter!("callrelay_events_received_total", "type" => "invalid", "outcome" => "rejected").increment(0);
    for reason in auth_reasons {
        counter!("callrelay_auth_failures_total", "reason" => *reason).increment(0);
    }
    counter!("callrelay_store_errors_total").increment(0);
    for channel in channels {
        let c = || channel.to_owned();
        for outcome in ["delivered", "channel_disabled"] {
            counter!("callrelay_deliveries_total", "channel" => c(), "outcome" => outcome).increment(0);
        }
        for outcome in ["delivered", "failed", "rate_limited"] {
            counter!("callrelay_posts_total", "channel" => c(), "outcome" => outcome).increment(0);
        }
        counter!("callrelay_dead_letters_total", "channel" => c()).increment(0);
        counter!("callrelay_render_errors_total", "channel" => c()).increment(0);
        gauge!("callrelay_queue_depth", "channel" => c()).increment(0.0);
        gauge!("callrelay_queue_oldest_age_seconds", "channel" => c()).increment(0.0);
        gauge!("callrelay_channel_broken", "channel" => c()).increment(0.0);
        gauge!("callrelay_lane_held", "channel" => c()).increment(0.0);
        for name in
            ["callrelay_delivery_latency_seconds", "callrelay_rate_limit_wait_seconds", "callrelay_pacing_wait_seconds"]
        {
            let _ = histogram!(name, "channel" => c());
        }
    }
}

/// The queue of a channel, as read at a scrape.
pub fn queue_observed(channel: &str, depth: u64, oldest_age_seconds: f64) {
    gauge!("callrelay_queue_depth", "channel" => channel.to_owned()).set(depth as f64);
    gauge!("callrelay_queue_oldest_age_seconds", "channel" => channel.to_owned()).set(oldest_age_seconds);
}

/// The configuration in force was loaded (at start, or by a reload).
pub fn config_loaded(ok: bool) {
    gauge!("callrelay_config_last_reload_successful").set(if ok { 1.0 } else { 0.0 });
    if ok {
        gauge!("callrelay_config_last_reload_success_timestamp_seconds").set(crate::store::now_ms() as f64 / 1000.0);
    }
}

/// A reload swapped in a new configuration.
pub fn reload_succeeded(trigger: &str) {
    config_loaded(true);
    tracing::info!(
        trigger,
        "Reloaded the configuration; new events use the new routes, and every post from now on the new templates."
    );
}

/// A reload was refused; the running configuration stays.
pub fn reload_failed(trigger: &str, problems: &str) {
    config_loaded(false);
    tracing::error!(trigger, problems, "Refused to reload the configuration; keeping the running one.");
}

/// An event was accepted and handed to delivery. The counters are resolved once (a labelled
/// lookup per request was a measurable share of intake).
pub fn event_accepted(event_type: EventType, call_id: &str, deliveries: usize) {
    static ACCEPTED: std::sync::OnceLock<Vec<metrics::Counter>> = std::sync::OnceLock::new();
    let accepted = ACCEPTED.get_or_init(|| {
        metrics_handle();
        EventType::ALL
            .iter()
            .map(|t| counter!("callrelay_events_received_total", "type" => t.as_str(), "outcome" => "accepted"))
            .collect()
    });
    let index = EventType::ALL.iter().position(|t| *t == event_type).expect("ALL lists every type");
    accepted[index].increment(1);
    tracing::debug!(event_type = event_type.as_str(), call_id, deliveries, "Accepted an event.");
}

/// An event of a type this version does not know was answered 200 and not routed.
pub fn event_unknown(event_type: &str) {
    counter!("callrelay_events_received_total", "type" => "unknown", "outcome" => "ignored").increment(1);
    tracing::info!(event_type, "Ignored an event of unknown type (answered 200 for forward compatibility).");
}

/// A request was refused (400, 413, …).
pub fn event_rejected(status: u16, reason: &str) {
    counter!("callrelay_events_received_total", "type" => "invalid", "outcome" => "rejected").increment(1);
    tracing::warn!(status, reason, "Rejected a request.");
}

/// An event matched no route.
pub fn event_unrouted(event_type: EventType, call_id: &str) {
    tracing::debug!(event_type = event_type.as_str(), call_id, "No route matched the event.");
}

/// A call had no event for `calls.end_after` and no `call_ended`: its `call_timed_out` is queued.
pub fn call_timed_out(call_id: &str, end_after: std::time::Duration, deliveries: usize) {
    counter!("callrelay_calls_timed_out_total").increment(1);
    tracing::info!(
        call_id,
        end_after = %humantime::format_duration(end_after),
        deliveries,
        "A call went quiet without a call_ended; queued its call_timed_out."
    );
}

/// The Beyond Presence API answered a call's lookup.
pub fn looked_up(call_id: &str) {
    counter!("callrelay_lookups_total", "outcome" => "answered").increment(1);
    tracing::debug!(call_id, "Looked the call up in the Beyond Presence API.");
}

/// A call's lookup got no usable answer: its held events are routed without one.
pub fn lookup_failed(call_id: &str, why: &str) {
    counter!("callrelay_lookups_total", "outcome" => "failed").increment(1);
    tracing::warn!(
        call_id,
        why,
        "No answer from the Beyond Presence API about the call; its events go on without one."
    );
}

/// A route sent an event to a channel that is disabled.
pub fn channel_skipped(channel: &str, why: &str, call_id: &str) {
    counter!("callrelay_deliveries_total", "channel" => channel.to_owned(), "outcome" => "channel_disabled")
        .increment(1);
    // Said once at start (`channel_disabled`); per event only at debug, to keep the log readable.
    tracing::debug!(channel, call_id, why, "Skipped a delivery because the channel is disabled.");
}

/// A channel is disabled at start.
pub fn channel_disabled(channel: &str, why: &str) {
    tracing::warn!(channel, why, "Channel is disabled; events routed to it will not be sent.");
}

/// A template failed for an event.
pub fn render_failed(e: &RenderError) {
    counter!("callrelay_render_errors_total", "channel" => e.channel.clone()).increment(1);
    tracing::error!(
        channel = %e.channel, call_id = %e.call_id, template = %e.template, line = e.line,
        error = %e.message, "A template failed; the event was not sent to this channel."
    );
}

/// Limit enforcement changed a rendered body.
pub fn render_adjusted(channel: &str, call_id: &str, notes: &[String]) {
    tracing::info!(channel, call_id, changes = %notes.join("; "), "Fitted a message to the platform's limits.");
}

/// A post was accepted by the platform: it completed `events` queued events (several when
/// coalesced; none for a part of an event split into several posts, until its last).
pub fn delivered(channel: &str, call_id: &str, events: usize, attempt: u32, latencies: impl Iterator<Item = Duration>) {
    counter!("callrelay_posts_total", "channel" => channel.to_owned(), "outcome" => "delivered").increment(1);
    counter!("callrelay_deliveries_total", "channel" => channel.to_owned(), "outcome" => "delivered")
        .increment(events as u64);
    for l in latencies {
        histogram!("callrelay_delivery_latency_seconds", "channel" => channel.to_owned()).record(l.as_secs_f64());
    }
    tracing::debug!(channel, call_id, events, attempt, "Delivered a post.");
}

/// The platform answered 429; the lane waits `wait` (this never counts as a failed attempt).
pub fn rate_limited(channel: &str, wait: Duration, answer: &str) {
    counter!("callrelay_posts_total", "channel" => channel.to_owned(), "outcome" => "rate_limited").increment(1);
    histogram!("callrelay_rate_limit_wait_seconds", "channel" => channel.to_owned()).record(wait.as_secs_f64());
    tracing::warn!(
        channel,
        wait_ms = wait.as_millis() as u64,
        answer,
        "The platform rate-limited a post; waiting as asked."
    );
}

/// The lane holds a post to stay within the channel's budget.
pub fn pacing_wait(channel: &str, wait: Duration) {
    histogram!("callrelay_pacing_wait_seconds", "channel" => channel.to_owned()).record(wait.as_secs_f64());
    tracing::trace!(channel, wait_ms = wait.as_millis() as u64, "Pacing the next post.");
}

/// A post failed in a way worth retrying.
pub fn attempt_failed(channel: &str, call_id: &str, attempt: u32, reason: &str) {
    counter!("callrelay_posts_total", "channel" => channel.to_owned(), "outcome" => "failed").increment(1);
    tracing::warn!(channel, call_id, attempt, reason, "A post failed; it will be retried.");
}

/// Posts went to the dead letters.
pub fn dead_lettered(channel: &str, count: usize, reason: &str) {
    counter!("callrelay_dead_letters_total", "channel" => channel.to_owned()).increment(count as u64);
    tracing::error!(channel, count, reason, "Moved posts to the dead letters (see `callrelay dlq list`).");
}

/// The platform refused to start a thread because the channel takes none (a Discord text
/// channel): the lane posts flat from now on.
pub fn threads_unavailable(channel: &str, answer: &str) {
    tracing::warn!(
        channel,
        answer,
        "The channel takes no threads (on Discord: not a forum or media channel); posting each call's events flat instead."
    );
}

/// A thread's parent was refused for good: the call's posts go to the channel flat.
pub fn thread_parent_refused(channel: &str, call_id: &str, answer: &str) {
    tracing::warn!(channel, call_id, answer, "The platform refused the call's thread parent; posting the call flat.");
}

/// The thread's parent could not be edited to show the call's outcome (the summary is in the
/// thread).
pub fn parent_not_edited(channel: &str, call_id: &str, answer: &str) {
    tracing::warn!(
        channel,
        call_id,
        answer,
        "The platform refused to edit the call's thread parent; the summary is in the thread."
    );
}

/// A call's thread was locked or deleted: the call continues in a new thread.
pub fn thread_archived(channel: &str, call_id: &str, answer: &str) {
    tracing::warn!(channel, call_id, answer, "The call's thread is closed to the relay (archived and locked, or deleted); continuing the call in a new thread.");
}

/// A live transcript's message can no longer be edited (archived thread, edit cap, deleted): the
/// transcript continues in a new message.
pub fn transcript_continued(channel: &str, call_id: &str, answer: &str) {
    tracing::info!(
        channel,
        call_id,
        answer,
        "The live transcript's message can no longer be edited; continuing it in a new message."
    );
}

/// A channel's webhook is gone; the lane stops posting to it until a reload or restart.
pub fn channel_broken(channel: &str, answer: &str) {
    gauge!("callrelay_channel_broken", "channel" => channel.to_owned()).set(1.0);
    tracing::error!(channel, answer, "The channel's webhook no longer works; not sending to it until the configuration is reloaded or the relay restarts.");
}

/// A broken channel is given another chance after a reload.
pub fn channel_repaired(channel: &str) {
    gauge!("callrelay_channel_broken", "channel" => channel.to_owned()).set(0.0);
}

/// This relay took a channel's lane lease: it sends for the channel now.
pub fn lane_taken(channel: &str, token: i64) {
    gauge!("callrelay_lane_held", "channel" => channel.to_owned()).set(1.0);
    tracing::info!(channel, token, "This relay now sends for the channel.");
}

/// Another relay took a channel's lane lease (this one paused, or could not renew in time).
pub fn lane_lost(channel: &str) {
    gauge!("callrelay_lane_held", "channel" => channel.to_owned()).set(0.0);
    tracing::warn!(channel, "Another relay now sends for the channel; this relay stopped sending for it.");
}

/// A lane's write was refused because its lease had moved on to another relay.
pub fn lane_fenced(channel: &str) {
    gauge!("callrelay_lane_held", "channel" => channel.to_owned()).set(0.0);
    tracing::warn!(
        channel,
        "Another relay took the channel over while this relay was posting; its write was refused and the new holder carries on (the post may be sent twice)."
    );
}

/// The store could not be read or written.
pub fn store_failed(doing: &str, error: &str) {
    counter!("callrelay_store_errors_total").increment(1);
    tracing::error!(doing, error, "The store failed.");
}

/// An identical event arrived again within `dedup.window`; answered 200, not forwarded.
pub fn duplicate_dropped(event_type: EventType, call_id: &str) {
    counter!("callrelay_duplicates_dropped_total", "type" => event_type.as_str()).increment(1);
    tracing::info!(event_type = event_type.as_str(), call_id, "Dropped a duplicate event.");
}

/// A request failed authentication. Counted every time; logged at most once per
/// [`AUTH_LOG_EVERY`] with the number of failures since, so an attack cannot flood the log.
pub fn auth_failed(reason: &'static str) {
    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
    static LAST_LOG_MS: AtomicI64 = AtomicI64::new(0);
    static SINCE: AtomicU64 = AtomicU64::new(0);
    counter!("callrelay_auth_failures_total", "reason" => reason).increment(1);
    let since = SINCE.fetch_add(1, Ordering::Relaxed) + 1;
    let now = crate::store::now_ms();
    let last = LAST_LOG_MS.load(Ordering::Relaxed);
    if now - last >= AUTH_LOG_EVERY.as_millis() as i64
        && LAST_LOG_MS.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        SINCE.store(0, Ordering::Relaxed);
        tracing::warn!(reason, failures = since, "Refused unauthenticated requests (401).");
    }
}

/// How often authentication failures are logged at most.
pub const AUTH_LOG_EVERY: Duration = Duration::from_secs(10);
