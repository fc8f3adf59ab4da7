//! Socket activation: listening sockets handed to the relay by systemd (a `.socket` unit) or by
//! `systemfd` in development, per `sd_listen_fds(3)`: `LISTEN_FDS` sockets from fd 3 (`LISTEN_PID`
//! naming this process, when set), named by `LISTEN_FDNAMES`. The socket outlives the process, so
//! during a restart the kernel queues new connections until the next process accepts them: a
//! restart refuses nothing. Reading the descriptors is the `listenfd` crate's.

use std::net::TcpListener;

/// The listeners handed over, if any.
#[derive(Debug, Default)]
pub struct Inherited {
    /// The webhook listener: the socket named `webhook`, or the first one that is not the
    /// console's.
    pub webhook: Option<TcpListener>,
    /// The console's, when a socket is named `console`.
    pub console: Option<TcpListener>,
}

/// Takes the sockets handed over (once, at start; the environment variables are then removed so
/// no child inherits them). An fd that is not a TCP listening socket is an error naming it.
pub fn take() -> Result<Inherited, String> {
    let names: Vec<String> =
        std::env::var("LISTEN_FDNAMES").map(|n| n.split(':').map(str::to_owned).collect()).unwrap_or_default();
    let mut fds = listenfd::ListenFd::from_env();
    std::env::remove_var("LISTEN_FDNAMES");
    let mut inherited = Inherited::default();
    for i in 0..fds.len() {
        let listener = fds
            .take_tcp_listener(i)
            .map_err(|e| format!("the socket handed over as fd {} (LISTEN_FDS): {e}", 3 + i))?;
        let Some(listener) = listener else { continue };
        let slot = match names.get(i).map(String::as_str) {
            Some("console") => &mut inherited.console,
            _ => &mut inherited.webhook,
        };
        if slot.is_some() {
            tracing::warn!(fd = 3 + i, "An extra socket was handed over; it is not used.");
            continue;
        }
        *slot = Some(listener);
    }
    Ok(inherited)
}
