//! Restarting a single relay refuses nothing: the service manager holds the listening socket
//! (socket activation, as a systemd `.socket` unit does), or the relay hands it to its successor
//! (in-place restart on SIGUSR2), and the kernel queues connections while one relay stops and
//! the next starts on the same socket.

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use wiremock::MockServer;

use crate::helpers::*;

/// The real binary serving `file` on `listener`, handed over as fd 3 with `LISTEN_FDS=1`, as
/// systemd hands a socket unit's socket to its service.
fn served_on(file: &Path, listener: &TcpListener) -> Served {
    let fd = listener.as_raw_fd();
    let mut cmd = bin();
    cmd.arg("--config").arg(file).env("LISTEN_FDS", "1").env("LISTEN_FDNAMES", "webhook").env_remove("LISTEN_PID");
    // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl) are made.
    unsafe {
        cmd.pre_exec(move || {
            let ok = if fd == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(fd, 3) };
            if ok < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Served::start(cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_through_a_handed_over_socket_answers_every_request_and_delivers_each_once_in_order() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    let (_dir, file) = write_config(DEFAULT_TOML, &slack, &discord);
    let mut first = served_on(&file, &listener);
    assert_eq!(first.port, port, "the relay serves on the socket it was handed");

    let sender = steady_stream(port, 120, "m");
    tokio::time::sleep(Duration::from_millis(400)).await;
    // `systemctl restart`: SIGTERM, wait for the exit, start again on the same socket.
    let status = std::process::Command::new("kill").args(["-TERM", &first.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(first.child.wait().unwrap().success(), "{}", first.log());
    let second = served_on(&file, &listener);

    let answers = sender.await.unwrap();
    each_answered_200_and_delivered_once_in_order(&answers, &slack, "m").await;
    second.wait_idle().await;
}

/// Sends `count` distinct messages of one call (`prefix` and a number), 10 ms apart, each on a new connection (as Beyond
/// Presence's calls arrive); gives each request's status or error.
fn steady_stream(port: u16, count: usize, prefix: &'static str) -> tokio::task::JoinHandle<Vec<Result<u16, String>>> {
    let url = format!("http://127.0.0.1:{port}/webhook");
    tokio::spawn(async move {
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let mut answers = Vec::new();
        for i in 0..count {
            let answer = client.post(&url).json(&message("call-x", "user", &format!("{prefix}{i:03}"))).send().await;
            answers.push(answer.map(|r| r.status().as_u16()).map_err(|e| e.to_string()));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        answers
    })
}

/// Every answer was 200 and Slack got each of the stream's messages once, in order.
async fn each_answered_200_and_delivered_once_in_order(
    answers: &[Result<u16, String>],
    slack: &MockServer,
    prefix: &str,
) {
    let refused: Vec<_> = answers.iter().enumerate().filter(|(_, a)| **a != Ok(200)).collect();
    assert!(refused.is_empty(), "every request answered 200: {refused:?}");
    let want: Vec<String> = (0..answers.len()).map(|i| format!("{prefix}{i:03}")).collect();
    let posted = async || -> Vec<String> {
        slack_messages(&bodies(slack).await).into_iter().filter(|m| m.starts_with(prefix)).collect()
    };
    wait_until("every event at Slack", Duration::from_secs(30), async || posted().await.len() >= want.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(posted().await, want, "each once, in order");
}

/// The relay an in-place restart started: not the test's child (the old relay started it), so
/// stopped by its process id, read from the old relay's log.
struct Successor(i32);

impl Successor {
    fn from_log(log: &str) -> Successor {
        let pid = log
            .split("successor=")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the old relay names its successor: {log}"));
        Successor(pid)
    }
}

impl Drop for Successor {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a process id read from the log; at worst it names no process.
        unsafe { libc::kill(self.0, libc::SIGTERM) };
    }
}

/// The port in the last "Console ready." line of `log`.
fn console_ports(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("Console ready."))
        .filter_map(|l| l.split("http://127.0.0.1:").nth(1))
        .map(|r| r.chars().take_while(char::is_ascii_digit).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_place_restart_on_sigusr2_answers_every_request_and_delivers_each_once_in_order() {
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    let (_dir, file) = write_config(DEFAULT_TOML, &slack, &discord);
    let mut old = Served::start({
        let mut cmd = bin();
        cmd.arg("--config").arg(&file);
        cmd
    });
    let sender = steady_stream(old.port, 150, "m");
    tokio::time::sleep(Duration::from_millis(400)).await;
    // An upgrade: the binary is replaced on disk (here: the same one), then `kill -USR2`.
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(old.child.id() as i32, libc::SIGUSR2) }, 0);
    let status = tokio::task::spawn_blocking(move || {
        let status = old.child.wait();
        (old, status)
    });
    let (old, status) = status.await.unwrap();
    assert!(status.unwrap().success(), "the old relay exits once its successor serves: {}", old.log());
    let successor = Successor::from_log(&old.log());
    assert_ne!(successor.0 as u32, old.child.id());

    let answers = sender.await.unwrap();
    each_answered_200_and_delivered_once_in_order(&answers, &slack, "m").await;
    let log = old.log();
    let ports = console_ports(&log);
    assert_eq!(ports.len(), 2, "both relays served the console: {log}");
    assert_eq!(ports[0], ports[1], "the console keeps its address");
    old.wait_idle().await;
    assert!(
        log.contains("Delivering as this lease holder.") && log.matches("callrelay is listening.").count() == 2,
        "{log}"
    );
}

/// Sends SIGUSR2 to `relay` and waits until its log holds `count` failed in-place restarts.
async fn restart_fails(relay: &Served, count: usize) -> String {
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(relay.child.id() as i32, libc::SIGUSR2) }, 0);
    wait_until("the failed restart to be logged", Duration::from_secs(20), async || {
        relay.log().matches("In-place restart failed; this relay keeps serving.").count() >= count
    })
    .await;
    relay.log()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_that_cannot_start_leaves_the_old_relay_serving_with_the_error_logged() {
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    let (dir, file) = write_config(DEFAULT_TOML, &slack, &discord);
    let mut old = Served::start({
        let mut cmd = bin();
        cmd.arg("--config").arg(&file);
        cmd
    });

    // A broken configuration file.
    let good = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, good.replace("[[routes]]", "[[routes]\n")).unwrap();
    let log = restart_fails(&old, 1).await;
    assert!(log.contains("before serving; its error is logged above"), "{log}");
    assert!(log.contains(&file.display().to_string()), "the successor's error names the file: {log}");
    assert!(old.child.try_wait().unwrap().is_none(), "the old relay still runs");
    let answers = steady_stream(old.port, 20, "m").await.unwrap();
    each_answered_200_and_delivered_once_in_order(&answers, &slack, "m").await;

    // A release that would upgrade the store the old relay still uses (here: the store made to
    // look older) refuses to start instead.
    std::fs::write(&file, &good).unwrap();
    let store = dir.path().join("data/callrelay.db");
    let version = |v: i64| {
        let conn = rusqlite::Connection::open(&store).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.pragma_update(None, "user_version", v).unwrap();
    };
    version(2);
    let log = restart_fails(&old, 2).await;
    assert!(log.contains("from version 2 to 4, which the running relay still uses"), "{log}");
    assert!(old.child.try_wait().unwrap().is_none(), "the old relay still runs");

    // Fixed: the next SIGUSR2 hands over.
    version(4);
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(old.child.id() as i32, libc::SIGUSR2) }, 0);
    let (old, status) = tokio::task::spawn_blocking(move || {
        let status = old.child.wait();
        (old, status)
    })
    .await
    .unwrap();
    assert!(status.unwrap().success(), "{}", old.log());
    let _successor = Successor::from_log(&old.log());
    let answers = steady_stream(old.port, 20, "after").await.unwrap();
    each_answered_200_and_delivered_once_in_order(&answers, &slack, "after").await;
}

/// Whether the relay on `port` holds `channel`'s lane (its `callrelay_lane_held` gauge).
async fn holds(port: u16, channel: &str) -> bool {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    text.lines().any(|l| l == format!("callrelay_lane_held{{channel=\"{channel}\"}} 1"))
}

/// What an in-place restart does for a moment, held for longer: two relays on one SQLite file,
/// both taking events. One sends for each channel; when it is killed, the other takes the
/// channel at once (its holder's process has ended), not after `store.lease`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_one_sqlite_file_send_each_event_once_and_a_crashed_holder_is_replaced_at_once() {
    let slack = mock_slack().await;
    let discord = mock_discord().await;
    let toml = DEFAULT_TOML.replace("[server]", "[store]\nlease = \"60s\"\n\n[server]");
    let (_dir, file) = write_config(&toml, &slack, &discord);
    let start = || {
        let mut cmd = bin();
        cmd.arg("--config").arg(&file);
        Served::start(cmd)
    };
    let (first, second) = (start(), start());
    let client = reqwest::Client::new();
    for i in 0..40 {
        let port = if i % 2 == 0 { first.port } else { second.port };
        let answer = client
            .post(format!("http://127.0.0.1:{port}/webhook"))
            .json(&message("call-x", "user", &format!("m{i:03}")))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    let want: Vec<String> = (0..40).map(|i| format!("m{i:03}")).collect();
    wait_until("every event at Slack", Duration::from_secs(20), async || {
        slack_messages(&bodies(&slack).await).len() >= want.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(slack_messages(&bodies(&slack).await), want, "each once, in order");
    let (a, b) = (holds(first.port, "live").await, holds(second.port, "live").await);
    assert!(a != b, "exactly one relay sends for the channel (first: {a}, second: {b})");

    // The holder crashes; the lease has 60 s left, but its process is gone.
    let (mut holder, other) = if a { (first, second) } else { (second, first) };
    holder.child.kill().unwrap();
    holder.child.wait().unwrap();
    let answer = client
        .post(format!("http://127.0.0.1:{}/webhook", other.port))
        .json(&message("call-x", "user", "after the crash"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    wait_until("the other relay to deliver, long before the lease runs out", Duration::from_secs(10), async || {
        slack_messages(&bodies(&slack).await).last().map(String::as_str) == Some("after the crash")
    })
    .await;
    assert!(holds(other.port, "live").await);
}
