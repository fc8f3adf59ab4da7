//! Several real relay binaries on one PostgreSQL database, with a Slack stand-in that enforces its
//! rate limit (a post over the budget, or during a 429's wait, is answered 429 and counted as a
//! violation): shared intake and dedup, one sender per channel, `kill -9` of the lane holder, a
//! paused holder fenced off, broken marks shared, a stopping holder handing over, and the
//! database going away and coming back. Skipped with a note
//! without a server, except under CI (`CI=true`).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::*;
use crate::postgres::fresh_schema;

/// The lease the tests run with (the shortest allowed).
const LEASE: Duration = Duration::from_secs(3);
/// The stand-in's one long 429: longer than a takeover takes, so a survivor that forgot it
/// would post too early.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// What the stand-in saw.
#[derive(Default)]
struct Seen {
    /// Texts answered 200, in arrival order, with when.
    delivered: Vec<(String, Instant)>,
    /// Posts over the budget or during a 429's wait.
    violations: Vec<String>,
    /// Recent accepted posts (for the 5-per-second window).
    recent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
    posts: usize,
}

/// A Slack stand-in allowing 5 posts per second (less 50 ms of jitter). At post number `answer_429_at` it answers 429
/// with `Retry-After: 10`; at post number `slow_at` it answers after 1.5 s. Each of those posts is
/// announced on `signal` when it arrives.
#[derive(Clone)]
struct StrictSlack {
    seen: Arc<Mutex<Seen>>,
    answer_429_at: Option<usize>,
    slow_at: Option<usize>,
    signal: Arc<tokio::sync::Notify>,
}

impl Respond for StrictSlack {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let text = slack_messages(&[body]).concat();
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap();
        seen.posts += 1;
        // Arrival times jitter by a few milliseconds against the relay's send times.
        while seen.recent.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_millis(950)) {
            seen.recent.pop_front();
        }
        if seen.blocked_until.is_some_and(|b| now < b) || seen.recent.len() >= 5 {
            seen.violations.push(text);
            return ResponseTemplate::new(429).insert_header("Retry-After", "1").set_body_string("rate_limited");
        }
        seen.recent.push_back(now);
        if Some(seen.posts) == self.answer_429_at {
            seen.blocked_until = Some(now + RETRY_AFTER);
            self.signal.notify_one();
            return ResponseTemplate::new(429)
                .insert_header("Retry-After", RETRY_AFTER.as_secs().to_string())
                .set_body_string("rate_limited");
        }
        seen.delivered.push((text, now));
        if Some(seen.posts) == self.slow_at {
            self.signal.notify_one();
            return ResponseTemplate::new(200).set_body_string("ok").set_delay(Duration::from_millis(1500));
        }
        ResponseTemplate::new(200).set_body_string("ok")
    }
}

impl StrictSlack {
    async fn start(answer_429_at: Option<usize>, slow_at: Option<usize>) -> (MockServer, StrictSlack) {
        let server = MockServer::start().await;
        let slack = StrictSlack { seen: Default::default(), answer_429_at, slow_at, signal: Default::default() };
        Mock::given(method("POST")).respond_with(slack.clone()).mount(&server).await;
        (server, slack)
    }

    fn delivered(&self) -> Vec<String> {
        self.seen.lock().unwrap().delivered.iter().map(|(t, _)| t.clone()).collect()
    }

    fn violations(&self) -> Vec<String> {
        self.seen.lock().unwrap().violations.clone()
    }

    /// Waits until every one of `texts` was delivered.
    async fn wait_for(&self, texts: &[String], replicas: &[&Served]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.delivered();
            if texts.iter().all(|t| got.contains(t)) {
                return;
            }
            let logs: String = replicas.iter().map(|r| r.log()).collect::<Vec<_>>().join("\n---\n");
            assert!(Instant::now() < deadline, "not all delivered; got {got:?}\nrelays said:\n{logs}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A relay configuration on the database at `CALLRELAY_TEST_DATABASE_URL`, one Slack channel
/// paced at 5 posts per second, one post per event.
fn config(slack: &MockServer) -> (tempfile::TempDir, std::path::PathBuf) {
    config_with_lease(slack, LEASE)
}

fn config_with_lease(slack: &MockServer, lease: Duration) -> (tempfile::TempDir, std::path::PathBuf) {
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
path = "/webhook"

[store]
url = "${{CALLRELAY_TEST_DATABASE_URL}}"
lease = "{}s"

[delivery]
backoff_base = "50ms"

[channels.live]
kind = "slack"
webhook_url = "{{slack}}"
rate_limit = ["5/1s"]
coalesce = false

[[routes]]
events = ["message"]
channels = ["live"]
"#,
        lease.as_secs()
    );
    let discord_unused = slack;
    write_config(&toml, slack, discord_unused)
}

fn replica(file: &Path, url: &str) -> Served {
    let mut cmd = bin();
    cmd.arg("--config").arg(file).env("CALLRELAY_TEST_DATABASE_URL", url);
    Served::start(cmd)
}

/// Two replicas started at once (racing to set up the schema).
fn two_replicas(file: &Path, url: &str) -> (Served, Served) {
    let (f, u) = (file.to_path_buf(), url.to_owned());
    let other = std::thread::spawn(move || replica(&f, &u));
    let first = replica(file, url);
    (first, other.join().unwrap())
}

/// Whether `relay` holds the `live` channel's lease, by its `/metrics`.
async fn holds(relay: &Served) -> bool {
    let url = format!("http://127.0.0.1:{}/metrics", relay.port);
    let Ok(answer) = reqwest::get(&url).await else { return false };
    answer.text().await.unwrap_or_default().contains("callrelay_lane_held{channel=\"live\"} 1")
}

/// Waits until exactly one of the two holds the channel; which (0 or 1).
async fn holder(relays: [&Served; 2]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (a, b) = (holds(relays[0]).await, holds(relays[1]).await);
        match (a, b) {
            (true, false) => return 0,
            (false, true) => return 1,
            _ => {}
        }
        assert!(Instant::now() < deadline, "no single holder: {a} {b}\n{}\n---\n{}", relays[0].log(), relays[1].log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn texts(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:02}")).collect()
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().unwrap();
    assert!(ok.success(), "kill -{sig} {pid}");
}

#[tokio::test]
async fn two_replicas_share_intake_and_dedup_and_one_sends_each_post_once_in_order() {
    let Some(url) = fresh_schema().await else { return };
    let (slack_server, slack) = StrictSlack::start(None, None).await;
    let (_dir, file) = config(&slack_server);
    let (a, b) = two_replicas(&file, &url);
    let held_by = holder([&a, &b]).await;

    // In order, alternating between the replicas.
    let ordered = texts("m", 20);
    for (i, text) in ordered.iter().enumerate() {
        let to = if i % 2 == 0 { &a } else { &b };
        assert_eq!(to.post_event(&message("call-1", "user", text)).await.status(), 200);
    }
    // The same event to both at once: both answer 200, one copy is queued.
    let twice = message("call-1", "user", "sent to both");
    let (x, y) = tokio::join!(a.post_event(&twice), b.post_event(&twice));
    assert_eq!((x.status(), y.status()), (reqwest::StatusCode::OK, reqwest::StatusCode::OK));
    // Concurrently, to both.
    let concurrent = texts("c", 30);
    let mut posts = tokio::task::JoinSet::new();
    for (i, text) in concurrent.iter().enumerate() {
        let url = format!("http://127.0.0.1:{}/webhook", if i % 2 == 0 { a.port } else { b.port });
        let body = message("call-2", "user", text);
        posts.spawn(async move { reqwest::Client::new().post(url).json(&body).send().await.unwrap().status() });
    }
    while let Some(status) = posts.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }

    let all: Vec<String> = ordered.iter().chain(&concurrent).cloned().chain(["sent to both".into()]).collect();
    slack.wait_for(&all, &[&a, &b]).await;
    a.wait_idle().await;
    b.wait_idle().await;
    let got = slack.delivered();
    assert_eq!(got[..20], ordered[..], "per-channel order across both replicas' intake");
    assert_eq!(got.len(), all.len(), "each event delivered exactly once: {got:?}");
    assert!(slack.violations().is_empty(), "over the budget: {:?}", slack.violations());
    assert_eq!(holder([&a, &b]).await, held_by, "the lease stayed where it was");
}

#[tokio::test]
async fn kill_9_of_the_lane_holder_mid_burst_loses_nothing_and_the_survivor_keeps_the_budget() {
    let Some(url) = fresh_schema().await else { return };
    // The 8th post is answered 429 with Retry-After: 10.
    let (slack_server, slack) = StrictSlack::start(Some(8), None).await;
    let (_dir, file) = config(&slack_server);
    let (a, b) = two_replicas(&file, &url);
    let mut relays = [Some(a), Some(b)];
    let held_by = holder([relays[0].as_ref().unwrap(), relays[1].as_ref().unwrap()]).await;
    let survivor_index = 1 - held_by;

    let first = texts("m", 30);
    for (i, text) in first.iter().enumerate() {
        let to = relays[i % 2].as_ref().unwrap();
        assert_eq!(to.post_event(&message("call-1", "user", text)).await.status(), 200);
    }
    // The holder is told to wait 10 s; it records that, then dies.
    tokio::time::timeout(Duration::from_secs(20), slack.signal.notified()).await.expect("no 429 was asked for");
    let told_to_wait_at = Instant::now();
    // Killed once the wait is recorded with its lease (a kill before that is the documented
    // at-least-once window, not what this test is about).
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    wait_until("the holder to record the 429's wait", Duration::from_secs(10), async || {
        let rows = db.query("SELECT pacing FROM lanes WHERE pacing LIKE '%\"blocked_until\":1%'", &[]).await;
        rows.is_ok_and(|r| !r.is_empty())
    })
    .await;
    let mut dead = relays[held_by].take().unwrap();
    signal(dead.child.id(), "KILL");
    let _ = dead.child.wait();
    let killed_at = Instant::now();
    let survivor = relays[survivor_index].take().unwrap();
    wait_until("the survivor to take the channel over", LEASE * 2 + Duration::from_secs(2), async || {
        holds(&survivor).await
    })
    .await;
    let takeover = killed_at.elapsed();

    // Intake goes on at the survivor while nobody sends.
    let more = texts("n", 10);
    for text in &more {
        assert_eq!(survivor.post_event(&message("call-1", "user", text)).await.status(), 200);
    }
    let all: Vec<String> = first.iter().chain(&more).cloned().collect();
    slack.wait_for(&all, &[&survivor, &dead]).await;
    survivor.wait_idle().await;

    let seen = slack.seen.lock().unwrap();
    let texts: Vec<&str> = seen.delivered.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(texts, all.iter().map(String::as_str).collect::<Vec<_>>(), "nothing lost, nothing repeated, in order");
    assert!(seen.violations.is_empty(), "the survivor went over the budget: {:?}", seen.violations);
    let resumed_at = seen.delivered.iter().map(|(_, at)| *at).find(|at| *at > killed_at).unwrap();
    // The lease runs out at most LEASE after the last renewal, which was at most LEASE / 3 before
    // the kill; the survivor looks every LEASE / 3.
    assert!(takeover < LEASE * 2, "took over after {takeover:?}, well before the 429's wait ended");
    assert!(resumed_at >= told_to_wait_at + RETRY_AFTER - Duration::from_secs(1), "the 429's wait carried over");
    assert!(resumed_at < told_to_wait_at + RETRY_AFTER + Duration::from_secs(3), "and no longer");
    assert!(survivor.log().contains("This relay now sends for the channel"), "{}", survivor.log());
}

#[tokio::test]
async fn a_paused_holder_that_lost_its_lease_is_fenced_off_when_it_wakes() {
    let Some(url) = fresh_schema().await else { return };
    // The 5th post is answered slowly: the holder is paused while waiting for it.
    let (slack_server, slack) = StrictSlack::start(None, Some(5)).await;
    let (_dir, file) = config(&slack_server);
    let (a, b) = two_replicas(&file, &url);
    let held_by = holder([&a, &b]).await;
    let (paused, other) = if held_by == 0 { (&a, &b) } else { (&b, &a) };

    let first = texts("m", 10);
    for text in &first {
        assert_eq!(other.post_event(&message("call-1", "user", text)).await.status(), 200);
    }
    tokio::time::timeout(Duration::from_secs(20), slack.signal.notified()).await.expect("the 5th post never came");
    signal(paused.child.id(), "STOP");
    // Its lease runs out; the other replica takes the channel over and repeats the post whose
    // outcome was never recorded (at-least-once), then goes on.
    slack.wait_for(&first, &[other]).await;
    signal(paused.child.id(), "CONT");
    wait_until("the paused relay to learn it lost the channel", Duration::from_secs(20), async || {
        paused.log().contains("its write was refused")
    })
    .await;
    let more = texts("n", 5);
    for text in &more {
        assert_eq!(paused.post_event(&message("call-1", "user", text)).await.status(), 200, "it still takes events");
    }
    slack.wait_for(&more, &[paused, other]).await;
    other.wait_idle().await;

    let got = slack.delivered();
    let mut expected: Vec<String> = first.clone();
    expected.insert(5, first[4].clone()); // m04: in flight when its relay paused, sent again
    expected.extend(more.iter().cloned());
    assert_eq!(got, expected, "the stale holder's late answer changed nothing");
    assert!(slack.violations().is_empty(), "{:?}", slack.violations());
    assert!(holds(other).await && !holds(paused).await);
}

/// A TCP relay to the database that the test can cut: while down, every connection through it is
/// closed and new ones are closed at once, as when the database server stops.
struct Cuttable {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cuttable {
    async fn start(to: std::net::SocketAddr) -> Cuttable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Default::default();
        let (u, l) = (up.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                l.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Cuttable { port, up, links }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.links.lock().unwrap().drain(..).for_each(|l| l.abort());
        }
    }
}

// Several threads: the cuttable link must run while `Served::start` blocks this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_answers_503_and_intake_recovers_by_itself() {
    let Some(url) = fresh_schema().await else { return };
    let database: url::Url = url.parse().unwrap();
    let target = std::net::SocketAddr::new(
        database.host_str().unwrap().parse().unwrap_or([127, 0, 0, 1].into()),
        database.port().unwrap_or(5432),
    );
    let cut = Cuttable::start(target).await;
    let through = url.replacen(&format!(":{}/", target.port()), &format!(":{}/", cut.port), 1);
    let (slack_server, slack) = StrictSlack::start(None, None).await;
    let (_dir, file) = config(&slack_server);
    let relay = replica(&file, &through);

    assert_eq!(relay.post_event(&message("c", "user", "before")).await.status(), 200);
    slack.wait_for(&["before".into()], &[&relay]).await;
    relay.wait_idle().await; // recorded as delivered (else it is sent again: at-least-once)
    cut.set_up(false);
    let started = Instant::now();
    let refused = relay.post_event(&message("c", "user", "while down")).await;
    assert_eq!(refused.status(), 503, "nothing is acknowledged that was not committed");
    assert!(started.elapsed() < Duration::from_secs(15), "answered only after {:?}", started.elapsed());
    let ready = reqwest::get(format!("http://127.0.0.1:{}/readyz?scope=intake", relay.port)).await.unwrap();
    assert_eq!(ready.status(), 503, "load balancers stop sending here");

    cut.set_up(true);
    wait_until("intake to recover", Duration::from_secs(30), async || {
        relay.post_event(&message("c", "user", "after")).await.status() == 200
    })
    .await;
    slack.wait_for(&["after".into()], &[&relay]).await;
    relay.wait_idle().await;
    assert_eq!(slack.delivered(), ["before", "after"], "the refused event was not half-kept");
    let ready = reqwest::get(format!("http://127.0.0.1:{}/readyz?scope=intake", relay.port)).await.unwrap();
    assert_eq!(ready.status(), 200);
}

async fn broken_channels(relay: &Served) -> Value {
    let url = format!("http://127.0.0.1:{}/readyz", relay.port);
    let answer: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    answer["broken_channels"].clone()
}

#[tokio::test]
async fn a_broken_channel_shows_on_every_replica_and_a_reload_on_any_clears_it() {
    let Some(url) = fresh_schema().await else { return };
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no_service"))
        .mount(&slack)
        .await;
    let (_dir, file) = config(&slack);
    let (a, b) = two_replicas(&file, &url);
    let held_by = holder([&a, &b]).await;
    let (sender, other) = if held_by == 0 { (&a, &b) } else { (&b, &a) };
    assert_eq!(other.post_event(&message("c", "user", "into the void")).await.status(), 200);
    for relay in [sender, other] {
        wait_until("both replicas to report the broken channel", Duration::from_secs(15), async || {
            broken_channels(relay).await["live"].as_str().is_some_and(|why| why.contains("no_service"))
        })
        .await;
    }
    // The webhook is fixed and the configuration reloaded, on the replica that does not send.
    signal(other.child.id(), "HUP");
    for relay in [sender, other] {
        wait_until("both replicas to forget the mark", Duration::from_secs(15), async || {
            broken_channels(relay).await.as_object().is_some_and(|m| m.is_empty())
        })
        .await;
    }
}

#[tokio::test]
async fn a_holder_stopping_with_sigterm_hands_its_channel_over_at_once() {
    let Some(url) = fresh_schema().await else { return };
    let (slack_server, slack) = StrictSlack::start(None, None).await;
    // A long lease: waiting for it to expire would take at least 10 s (the last renewal was at
    // most 5 s before the stop); a released lease is taken at the next look, within 5 s.
    let lease = Duration::from_secs(15);
    let (_dir, file) = config_with_lease(&slack_server, lease);
    let (a, b) = two_replicas(&file, &url);
    let held_by = holder([&a, &b]).await;
    let (mut stopping, survivor) = if held_by == 0 { (a, b) } else { (b, a) };
    assert_eq!(survivor.post_event(&message("c", "user", "before")).await.status(), 200);
    slack.wait_for(&["before".into()], &[&stopping, &survivor]).await;
    signal(stopping.child.id(), "TERM");
    let stopped_at = Instant::now();
    assert!(stopping.child.wait().unwrap().success());
    wait_until("the other replica to take the channel", lease / 3 + Duration::from_secs(2), async || {
        holds(&survivor).await
    })
    .await;
    assert!(stopped_at.elapsed() < lease / 2, "released, not expired: {:?}", stopped_at.elapsed());
    assert_eq!(survivor.post_event(&message("c", "user", "after")).await.status(), 200);
    slack.wait_for(&["after".into()], &[&survivor]).await;
    survivor.wait_idle().await;
    assert_eq!(slack.delivered(), ["before", "after"]);
}
