//! Live reload: on SIGHUP, or when `relay.toml` or a file under the templates directory changes
//! (debounced), the configuration is loaded and validated as `callrelay check` does and swapped
//! in atomically. A bad configuration is refused with a log line and the running one stays.
//! Nothing queued or in flight is lost: the queue lives in the store, and lanes are replaced only
//! after their posts in flight finish.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use notify::event::ModifyKind;
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::{Snapshot, State};
use crate::auth::Authenticator;
use crate::config::ConfigSource;
use crate::{samples, setup, telemetry};

/// How long file changes are gathered before one reload.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Reload counters, for `/readyz` and tests.
#[derive(Debug, Default)]
pub struct Status {
    /// Successful reloads.
    pub succeeded: AtomicU64,
    /// Refused reloads.
    pub failed: AtomicU64,
    /// When the running configuration was loaded (Unix milliseconds); 0 for the start.
    pub loaded_at_ms: AtomicI64,
}

/// Starts watching: SIGHUP (which also calls `on_hangup`, such as re-reading the TLS
/// certificate) and file changes.
pub fn spawn(
    source: ConfigSource,
    templates_dir: PathBuf,
    state: web::Data<State>,
    on_hangup: Option<Box<dyn Fn() + Send + Sync>>,
) {
    state.reloads.loaded_at_ms.store(crate::store::now_ms(), Ordering::Relaxed);
    telemetry::config_loaded(true);
    let (tx, mut rx) = mpsc::channel::<&'static str>(8);
    #[cfg(unix)]
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
            while hup.recv().await.is_some() {
                if let Some(on_hangup) = &on_hangup {
                    on_hangup();
                }
                let _ = tx.send("SIGHUP").await;
            }
        });
    }
    let watcher = watch(&source, &templates_dir, tx);
    tokio::spawn(async move {
        let _watcher = watcher; // dropped (and stopped) with this task
        while let Some(why) = rx.recv().await {
            // Debounce: an editor's save is several events; take them all as one reload.
            tokio::time::sleep(DEBOUNCE).await;
            while rx.try_recv().is_ok() {}
            reload(&source, &state, why).await;
        }
    });
}

/// Loads, validates and swaps in the configuration; logs and counts the outcome.
async fn reload(source: &ConfigSource, state: &web::Data<State>, why: &str) {
    let loaded = setup::load(source).map_err(|e| e.to_string()).and_then(|c| {
        let report = samples::check(&c);
        if report.problems.is_empty() {
            Ok(c)
        } else {
            Err(format!("{} template problem(s): {}", report.problems.len(), report.problems.join("; ")))
        }
    });
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            state.reloads.failed.fetch_add(1, Ordering::Relaxed);
            telemetry::reload_failed(why, &e);
            return;
        }
    };
    let current = state.snapshot.load();
    if config.server.listen != current.config.server.listen
        || config.server.path != current.config.server.path
        || config.server.tls.as_ref().map(|t| (&t.cert, &t.key))
            != current.config.server.tls.as_ref().map(|t| (&t.cert, &t.key))
        || config.store.path != current.config.store.path
        || config.store.url != current.config.store.url
        || (config.admin.enabled, &config.admin.listen) != (current.config.admin.enabled, &current.config.admin.listen)
    {
        tracing::warn!(
            "`server.listen`, `server.path`, `server.tls`, `store.path`, `store.url`, `admin.enabled` and `admin.listen` changes take effect after a restart."
        );
    }
    for (name, why) in config.disabled_channels() {
        telemetry::channel_disabled(name, why);
    }
    super::metric_families_ready(&config);
    let config = Arc::new(config);
    state.dispatcher.reload(&config).await;
    state.snapshot.store(Arc::new(Snapshot { auth: Authenticator::new(&config.auth), config }));
    state.reloads.succeeded.fetch_add(1, Ordering::Relaxed);
    state.reloads.loaded_at_ms.store(crate::store::now_ms(), Ordering::Relaxed);
    telemetry::reload_succeeded(why);
}

/// Watches the config file's directory (editors replace files by renaming) and the templates
/// directory for changes (reads are ignored, so loading the templates cannot trigger itself);
/// `None` when watching is not possible (logged).
fn watch(source: &ConfigSource, templates_dir: &Path, tx: mpsc::Sender<&'static str>) -> Option<RecommendedWatcher> {
    let config_file = match source {
        ConfigSource::File(p) => Some(p.clone()),
        ConfigSource::BuiltIn => None,
    };
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let templates_dir = canonical(templates_dir);
    let config_dir = config_file
        .as_ref()
        .map(|f| canonical(f.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))));
    let config_path = config_file.as_ref().and_then(|f| Some(config_dir.clone()?.join(f.file_name()?)));
    let templates = templates_dir.clone();
    let config_dir_w = config_dir.clone();
    let handler = move |res: notify::Result<Event>| {
        let Ok(event) = res else { return };
        let changed = match event.kind {
            EventKind::Modify(ModifyKind::Metadata(_)) => false, // atime and permission changes
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
            _ => false,
        };
        // Kubernetes swaps a mounted ConfigMap by renaming hidden `..data` entries beside the file.
        let swapped = |p: &Path| {
            p.parent() == config_dir_w.as_deref()
                && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".."))
        };
        let relevant =
            event.paths.iter().any(|p| p.starts_with(&templates) || Some(p) == config_path.as_ref() || swapped(p));
        if changed && relevant {
            let _ = tx.try_send("file change");
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot watch files for changes; reload with SIGHUP.");
            return None;
        }
    };
    if let Some(dir) = &config_dir {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(error = %e, dir = %dir.display(), "Cannot watch the configuration's directory; reload with SIGHUP.");
        }
    }
    if templates_dir.is_dir() {
        if let Err(e) = watcher.watch(&templates_dir, RecursiveMode::Recursive) {
            tracing::warn!(error = %e, dir = %templates_dir.display(), "Cannot watch the templates directory; reload with SIGHUP.");
        }
    }
    Some(watcher)
}
