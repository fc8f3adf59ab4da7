//! In-place restart on `SIGUSR2`, as nginx does: the running relay starts its successor (the
//! binary on disk now, same arguments and environment), handing it the listening sockets by the
//! socket activation protocol ([`super::activation`]) and a pipe to say it serves. Only then
//! does the old relay stop accepting, finish the requests in flight and its posts in flight,
//! release its lanes (the successor takes them within a second) and exit. Meanwhile the socket
//! never closes: the kernel queues connections for whichever process accepts next. A successor
//! that fails (a broken configuration, a store it cannot open) exits with its error logged, and
//! the old relay keeps serving.
//!
//! Under systemd the successor also tells the service manager it is the service's main process
//! now (`MAINPID=`, needs `NotifyAccess=all` in the unit); a container's first process cannot
//! restart in place (its successor would end with it), and says so.

use std::io::Read as _;
use std::net::TcpListener;
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use command_fds::{CommandFdExt as _, FdMapping};
use tokio::sync::Notify;

/// The environment variable naming the fd on which a successor says it serves.
const READY_FD: &str = "CALLRELAY_READY_FD";

/// How long a successor may take to start serving (opening a remote store included) before it
/// is stopped and the old relay keeps serving.
const START_LIMIT: Duration = Duration::from_secs(60);

/// The sockets a relay hands to its successor (copies of its listening sockets).
pub struct Sockets {
    /// The webhook's listening socket.
    pub webhook: TcpListener,
    /// The console's, when it serves one.
    pub console: Option<TcpListener>,
}

/// Whether this relay was started by an in-place restart (its predecessor still serves).
pub fn succeeding() -> bool {
    std::env::var_os(READY_FD).is_some()
}

/// Tells whoever started this relay that it serves: the relay it succeeds (by the pipe named in
/// `CALLRELAY_READY_FD`) and systemd (`READY=1` with this process as the main one, when
/// `NOTIFY_SOCKET` is set). Called once the listeners are serving.
pub fn announce_ready() {
    if let Some(fd) = std::env::var(READY_FD).ok().and_then(|v| v.parse::<i32>().ok()) {
        std::env::remove_var(READY_FD);
        // SAFETY: the relay that started this one put the pipe's writing end at this fd for us
        // alone (see `start_successor`); it is closed here, once.
        let mut pipe = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        if let Err(e) = std::io::Write::write_all(&mut pipe, b"ready\n") {
            tracing::warn!(error = %e, "Could not tell the relay this one succeeds that it serves.");
        }
    }
    let states = [sd_notify::NotifyState::MainPid(std::process::id()), sd_notify::NotifyState::Ready];
    if let Err(e) = sd_notify::notify(&states) {
        tracing::warn!(error = %e, "Could not tell systemd that the relay serves (NOTIFY_SOCKET).");
    }
}

/// On `SIGUSR2`, starts a successor with `sockets`; once it serves, wakes `handed_over` (the
/// server then stops as on SIGTERM). A failed attempt is logged and this relay keeps serving;
/// another `SIGUSR2` tries again.
pub fn restart_on_signal(sockets: Sockets, handed_over: Arc<Notify>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        // Registered before this returns, so before "callrelay is listening." is logged: registered
        // inside the task, a SIGUSR2 sent right after that line could still meet the default
        // action, which ends the process.
        let Ok(mut usr2) = signal(SignalKind::user_defined2()) else { return };
        tokio::spawn(async move {
            // The program as it was started (a path, or a name found on `PATH`), so the successor is
            // the binary there now: an upgrade replaces the file and then signals.
            let program = std::env::args_os().next().unwrap_or_else(|| "callrelay".into());
            while usr2.recv().await.is_some() {
                tracing::info!("SIGUSR2: starting a new relay on the same sockets (in-place restart).");
                match start_successor(&program, &sockets).await {
                    Ok(pid) => {
                        tracing::info!(
                            successor = pid,
                            "The new relay serves; this one stops accepting, finishes what it has in flight, hands its lanes over and exits."
                        );
                        handed_over.notify_one();
                        return;
                    }
                    Err(e) => tracing::error!(error = %e, "In-place restart failed; this relay keeps serving."),
                }
            }
        });
    }
}

async fn start_successor(program: &std::ffi::OsStr, sockets: &Sockets) -> Result<u32, String> {
    if std::process::id() == 1 {
        return Err("this relay is its container's first process (PID 1), so a successor would end with it: \
                    replace the container instead, or run several replicas for rollouts that refuse nothing"
            .into());
    }
    let copy =
        |l: &TcpListener| l.try_clone().map(OwnedFd::from).map_err(|e| format!("cannot copy a listening socket: {e}"));
    let mut mappings = vec![FdMapping { parent_fd: copy(&sockets.webhook)?, child_fd: 3 }];
    let mut names = "webhook".to_owned();
    if let Some(console) = &sockets.console {
        mappings.push(FdMapping { parent_fd: copy(console)?, child_fd: 4 });
        names.push_str(":console");
    }
    let (mut ready, announce) = std::io::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let announce_fd = 3 + mappings.len() as i32;
    mappings.push(FdMapping { parent_fd: announce.into(), child_fd: announce_fd });
    let mut command = std::process::Command::new(program);
    command
        .args(std::env::args_os().skip(1))
        .env("LISTEN_FDS", (mappings.len() - 1).to_string())
        .env("LISTEN_FDNAMES", names)
        .env(READY_FD, announce_fd.to_string())
        .env_remove("LISTEN_PID");
    command.fd_mappings(mappings).map_err(|e| format!("cannot hand the sockets over: {e}"))?;
    let mut child =
        command.spawn().map_err(|e| format!("cannot start `{}`: {e}", std::path::Path::new(program).display()))?;
    // Our copy of the pipe's writing end goes with the command: the pipe ends when the successor
    // writes or exits.
    drop(command);
    let pid = child.id();
    let said = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = ready.read_to_string(&mut line);
        line
    });
    let said = match tokio::time::timeout(START_LIMIT, said).await {
        Ok(said) => said.unwrap_or_default(),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the new relay (pid {pid}) did not serve within {START_LIMIT:?}; it was stopped"));
        }
    };
    if said.starts_with("ready") {
        return Ok(pid);
    }
    let status = tokio::task::spawn_blocking(move || child.wait()).await;
    let status = match status {
        Ok(Ok(status)) => status.to_string(),
        _ => "unknown status".into(),
    };
    Err(format!("the new relay (pid {pid}) exited ({status}) before serving; its error is logged above"))
}
