//! Restarting a single relay refuses nothing: the service manager holds the listening socket
//! (socket activation, as a systemd `.socket` unit does) and the kernel queues connections while
//! one relay stops and the next starts on the same socket.

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

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

    // A steady stream, a new connection per request (as Beyond Presence's calls arrive).
    let url = format!("http://127.0.0.1:{port}/webhook");
    let sender = tokio::spawn(async move {
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let mut answers = Vec::new();
        for i in 0..120 {
            let answer = client.post(&url).json(&message("call-x", "user", &format!("m{i:03}"))).send().await;
            answers.push(answer.map(|r| r.status().as_u16()).map_err(|e| e.to_string()));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        answers
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    // `systemctl restart`: SIGTERM, wait for the exit, start again on the same socket.
    let status = std::process::Command::new("kill").args(["-TERM", &first.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(first.child.wait().unwrap().success(), "{}", first.log());
    let second = served_on(&file, &listener);

    let answers = sender.await.unwrap();
    let refused: Vec<_> = answers.iter().enumerate().filter(|(_, a)| **a != Ok(200)).collect();
    assert!(refused.is_empty(), "every request answered 200: {refused:?}");
    let want: Vec<String> = (0..120).map(|i| format!("m{i:03}")).collect();
    wait_until("every event at Slack", Duration::from_secs(30), async || {
        slack_messages(&bodies(&slack).await).len() >= want.len()
    })
    .await;
    second.wait_idle().await;
    assert_eq!(slack_messages(&bodies(&slack).await), want, "each once, in order");
}
