#!/usr/bin/env python3
"""callrelay load benchmarks: ingest ceiling and ratio, latency at a steady rate, delivery against
the platforms' limits, memory, start-up, and the criterion micro-benchmarks, in one run.

    python3 benches/load.py            # everything (about 15 minutes), writes benches/README.md
    python3 benches/load.py --quick    # shorter runs and smaller bursts, for a smoke test

Needs only loopback and packages from the usual registries: it builds the relay and two helper
programs (examples/bare_ingest.rs, examples/platform_emulator.rs), and installs the load
generator oha with `cargo install oha --locked` when it is missing.
"""
import argparse
import http.client
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "target" / "release"
RELAY = TARGET / "callrelay"
OHA = shutil.which("oha") or str(Path.home() / ".cargo" / "bin" / "oha")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def build():
    subprocess.run(["cargo", "build", "--release", "--bin", "callrelay", "--example", "bare_ingest", "--example", "platform_emulator"], cwd=ROOT, check=True)
    if not Path(OHA).exists():
        subprocess.run(["cargo", "install", "oha", "--locked"], check=True)


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    mem = next(l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    rustc = sh(["rustc", "--version"]).strip()
    disk = sh(["df", "-h", str(ROOT)]).splitlines()[-1].split()
    return f"{os.cpu_count()} cores ({cpu}), {mem} memory, Linux {platform.release()}, {rustc}, disk {disk[0]} ({disk[1]})"


class Proc:
    """A started program whose output is collected; `port` is parsed from its first lines."""

    def __init__(self, cmd, env=None, pattern=r"\"?port\"?[=:](\d+)|listening on (\d+)"):
        self.started = time.monotonic()
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
        self.lines = []
        self.port = None
        found = threading.Event()

        def read():
            for line in self.p.stdout:
                self.lines.append(line)
                m = re.search(pattern, line)
                if m and self.port is None:
                    self.port = int(m.group(1) or m.group(2))
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(60):
            raise RuntimeError(f"{cmd[0]} did not start:\n{''.join(self.lines)}")

    def rss_kb(self, field="VmRSS"):
        for line in open(f"/proc/{self.p.pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    return r.status, r.read().decode()


def post(conn, path, body):
    conn.request("POST", path, body=json.dumps(body), headers={"content-type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status


def relay_config(dir, emulator_port, *, coalesce=True, dedup=True, slack_port=None, both=True, routes=None, rate_limit=None):
    """A relay on the emulator. `both`: every event to Slack and Discord (delivery runs); else the
    shipped routing (messages to Slack, summaries to Discord). `routes` replaces either;
    `rate_limit` sets both channels' budget."""
    slack = f"http://127.0.0.1:{slack_port or emulator_port}/services/T/B/bench"
    routes = routes or ('[[routes]]\nchannels = ["slack", "discord"]' if both else
        '[[routes]]\nevents = ["message"]\nchannels = ["slack"]\n[[routes]]\nevents = ["call_ended"]\nchannels = ["discord"]')
    budget = f'rate_limit = ["{rate_limit}"]' if rate_limit else ""
    text = f"""
[server]
listen = "127.0.0.1:0"
[templates]
dir = "{ROOT / 'templates'}"
[store]
path = "{dir / 'data' / 'relay.db'}"
[dedup]
window = "{'10m' if dedup else '0s'}"
[log]
format = "json"
[channels.slack]
kind = "slack"
webhook_url = "{slack}"
coalesce = {str(coalesce).lower()}
{budget}
[channels.discord]
kind = "discord"
webhook_url = "http://127.0.0.1:{emulator_port}/api/webhooks/1/bench"
coalesce = {str(coalesce).lower()}
{budget}
{routes}
"""
    path = dir / "relay.toml"
    path.write_text(text)
    return path


def start_relay(config):
    return Proc([str(RELAY), "serve", "--config", str(config)], env={"RUST_LOG": "warn,callrelay::cli=info"})


def oha(url, body_file, *, seconds, conns=32, rate=None, n=None):
    cmd = [OHA, "--no-tui", "--output-format", "json", "-c", str(conns), "-m", "POST", "-T", "application/json", "-D", str(body_file)]
    cmd += ["-n", str(n)] if n else ["-z", f"{seconds}s"]
    if rate:
        cmd += ["-q", str(rate), "--latency-correction"]
    out = json.loads(sh(cmd + [url]))
    lat = out.get("latencyPercentiles", {})
    codes = out.get("statusCodeDistribution", {})
    return {
        "rps": out["summary"]["requestsPerSec"],
        "p50": lat.get("p50", 0) * 1000,
        "p99": lat.get("p99", 0) * 1000,
        "p999": lat.get("p99.9", 0) * 1000,
        "codes": codes,
    }


def min_time(posts, windows):
    """Earliest time the last of `posts` posts can leave under `windows` [(n, seconds)]."""
    sent = []
    t = 0.0
    for _ in range(posts):
        for n, per in windows:
            if len(sent) >= n:
                t = max(t, sent[-n] + per)
        sent.append(t)
    return sent[-1] if sent else 0.0


SLACK = [(1, 1.0)]
DISCORD = [(5, 2.0), (30, 60.0)]


def delivery_run(tmp, emulator, *, messages, calls, coalesce):
    d = Path(tempfile.mkdtemp(dir=tmp))
    relay = start_relay(relay_config(d, emulator.port, coalesce=coalesce))
    before = json.loads(get(emulator.port, "/stats")[1])
    first = [None]

    def call(c):
        conn = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=10)
        for i in range(messages // calls):
            ev = {"event_type": "message", "call_id": f"call{c:02}", "call_data": {"userName": f"Caller {c}", "agentId": "agent_1"},
                  "message": {"sender": "user" if i % 2 else "ai", "message": f"utterance #n{c * 10000 + i} of call {c}", "sent_at": "2025-10-28T10:31:25.159564"}}
            assert post(conn, "/webhook", ev) == 200
            if first[0] is None:
                first[0] = time.time()
        ended = {"event_type": "call_ended", "call_id": f"call{c:02}", "user_name": f"Caller {c}",
                 "evaluation": {"topic": "Billing", "user_sentiment": "positive", "duration_minutes": 4.5, "messages_count": messages // calls},
                 "messages": [{"sender": "ai", "message": "Hello"}, {"sender": "user", "message": "Bye"}]}
        assert post(conn, "/webhook", ended) == 200

    threads = [threading.Thread(target=call, args=(c,)) for c in range(calls)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    # Wait until the relay's queue is empty.
    deadline = time.time() + 3600
    while time.time() < deadline:
        metrics = get(relay.port, "/metrics")[1]
        depth = sum(float(l.split()[-1]) for l in metrics.splitlines() if l.startswith("callrelay_queue_depth"))
        if depth == 0:
            break
        time.sleep(0.5)
    after = json.loads(get(emulator.port, "/stats")[1])
    relay.stop()
    rows = []
    for name, windows in (("Slack", SLACK), ("Discord", DISCORD)):
        a, b = after[name.lower()], before[name.lower()]
        posts = a["posts"] - b["posts"]
        seq = a["sequence"][len(b["sequence"]):]
        per_call = {}
        for n in seq:
            per_call.setdefault(n // 10000, []).append(n % 10000)
        unique = {n for n in seq}
        in_order = all(v == sorted(v) for v in per_call.values())
        rows.append({
            "platform": name, "coalesce": coalesce, "events": messages + calls, "posts": posts,
            "limited": a["limited"] - b["limited"], "seconds": a["last_ms"] / 1000 - first[0],
            "min_posts": min_time(posts, windows), "min_events": min_time(messages + calls, windows),
            "complete": len(unique) == messages, "in_order": in_order, "duplicates": len(seq) - len(unique),
        })
    return rows


def end_to_end(tmp, *, rate, seconds):
    """Time from the relay's 200 to the post arriving, at a steady `rate` of `message` events to
    one Slack channel on an emulator without limits (so only the relay is measured)."""
    emulator = Proc([str(TARGET / "examples" / "platform_emulator"), "127.0.0.1:0", "unlimited"])
    d = Path(tempfile.mkdtemp(dir=tmp))
    routes = '[[routes]]\nevents = ["message"]\nchannels = ["slack"]'
    relay = start_relay(relay_config(d, emulator.port, coalesce=False, routes=routes, rate_limit="100000/1s"))
    conn = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=10)
    acked = {}
    n = rate * seconds
    start = time.monotonic()
    for i in range(n):
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
        ev = {"event_type": "message", "call_id": "latency", "message": {"sender": "user", "message": f"utterance #n{i}", "sent_at": "2024-01-15T10:30:00Z"}}
        assert post(conn, "/webhook", ev) == 200
        acked[i] = time.time() * 1e6
    deadline = time.time() + 60
    while time.time() < deadline:
        stats = json.loads(get(emulator.port, "/stats")[1])["slack"]
        if len(stats["sequence"]) >= n:
            break
        time.sleep(0.2)
    relay.stop()
    emulator.stop()
    lat = sorted((us - acked[i]) / 1000 for i, us in zip(stats["sequence"], stats["arrived_us"]) if i in acked)
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    return {"rate": rate, "events": n, "arrived": len(lat), "p50": q(0.5), "p99": q(0.99), "max": lat[-1]}


def startup(tmp, emulator):
    times = []
    for _ in range(5):
        d = Path(tempfile.mkdtemp(dir=tmp))
        cfg = relay_config(d, emulator.port)
        t0 = time.monotonic()
        p = subprocess.Popen([str(RELAY), "serve", "--config", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "RUST_LOG": "info", "CALLRELAY__SERVER__LISTEN": "127.0.0.1:18787"})
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", 18787), timeout=0.05)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    times.append((time.monotonic() - t0) * 1000)
                    s.close()
                    break
                s.close()
            except OSError:
                time.sleep(0.001)
            if time.monotonic() - t0 > 10:
                raise RuntimeError("the relay did not start")
        p.terminate()
        p.wait(20)
    return statistics.median(times)


def criterion():
    out = subprocess.run(["cargo", "bench", "--bench", "micro", "--", "--noplot"], cwd=ROOT, check=True, text=True, capture_output=True).stdout
    results = []
    name = None
    for line in out.splitlines():
        if line and not line.startswith(" ") and "time:" not in line and not line.startswith(("Benchmarking", "Found", "Gnuplot", "Warning")):
            name = line.strip()
        m = re.search(r"time:\s+\[[^\]]*?\s([\d.]+ \S+)\s", line)
        if m:
            label = line.split("time:")[0].strip() or name
            results.append((label, m.group(1)))
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--report-only", action="store_true", help="rewrite README.md from benches/results.json")
    args = ap.parse_args()
    results_file = ROOT / "benches" / "results.json"
    if args.report_only:
        saved = json.loads(results_file.read_text())
        write_report(saved["results"], quick=saved["quick"])
        return
    seconds = 5 if args.quick else 15
    build()
    tmp = tempfile.mkdtemp(prefix="callrelay-bench-")
    body = Path(tmp) / "event.json"
    body.write_text(json.dumps({"event_type": "message", "call_id": "bench-call", "message": {"sender": "user", "message": "Hi, I need help with my order number 12345.", "sent_at": "2024-01-15T10:30:00Z"}, "call_data": {"userName": "John Doe", "agentId": "agent_456"}}))
    # Deliveries made while measuring ingest go to their own emulator, so the delivery runs below
    # start with fresh rate-limit windows.
    sink = Proc([str(TARGET / "examples" / "platform_emulator"), "127.0.0.1:0"])
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    print("machine:", results["machine"], flush=True)

    # 1. Ingest ceiling and ratio.
    bare = Proc([str(TARGET / "examples" / "bare_ingest"), "127.0.0.1:0"])
    results["bare"] = oha(f"http://127.0.0.1:{bare.port}/webhook", body, seconds=seconds)
    bare.stop()
    d = Path(tempfile.mkdtemp(dir=tmp))
    # Every real message differs; with one repeated body, dedup would drop all but the first.
    relay = start_relay(relay_config(d, sink.port, dedup=False, both=False))
    time.sleep(1)
    results["idle_rss_kb"] = relay.rss_kb()
    results["relay"] = oha(f"http://127.0.0.1:{relay.port}/webhook", body, seconds=seconds)
    results["load_peak_rss_kb"] = relay.rss_kb("VmHWM")
    # 2. Latency at a steady 1,000 requests per second (coordinated-omission corrected).
    results["steady"] = oha(f"http://127.0.0.1:{relay.port}/webhook", body, seconds=seconds, rate=1000)
    relay.stop()
    # 1b. The same with no route matching (parse, authenticate, route, dedup; nothing stored).
    d = Path(tempfile.mkdtemp(dir=tmp))
    relay = start_relay(relay_config(d, sink.port, dedup=False, routes='[[routes]]\nevents = ["call_ended"]\nchannels = ["discord"]'))
    results["unrouted"] = oha(f"http://127.0.0.1:{relay.port}/webhook", body, seconds=seconds)
    relay.stop()
    print("ingest:", results["bare"], results["relay"], results["unrouted"], results["steady"], flush=True)
    # 2b. End to end at a steady 200 events per second.
    results["end_to_end"] = end_to_end(tmp, rate=200, seconds=5 if args.quick else 20)
    print("end to end:", results["end_to_end"], flush=True)

    # 4b. Memory with 100,000 deliveries queued behind a stopped endpoint.
    d = Path(tempfile.mkdtemp(dir=tmp))
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    relay = start_relay(relay_config(d, dead_port, dedup=False, slack_port=dead_port, both=False))
    queued = 20_000 if args.quick else 100_000
    oha(f"http://127.0.0.1:{relay.port}/webhook", body, seconds=None, n=queued)
    depth = sum(float(l.split()[-1]) for l in get(relay.port, "/metrics")[1].splitlines() if l.startswith("callrelay_queue_depth"))
    time.sleep(2)
    results["queued"] = int(depth)
    results["queued_rss_kb"] = relay.rss_kb()
    relay.stop()
    print("queued:", results["queued"], results["queued_rss_kb"], flush=True)

    # 5. Start-up.
    results["startup_ms"] = startup(tmp, sink)
    sink.stop()
    print("startup:", results["startup_ms"], flush=True)

    # 3. Delivery against the limits.
    small = 40 if args.quick else 100
    big = 200 if args.quick else 1000
    results["delivery"] = []
    for messages, coalesce in ((small, False), (big, True)):
        emulator = Proc([str(TARGET / "examples" / "platform_emulator"), "127.0.0.1:0"])
        results["delivery"] += delivery_run(tmp, emulator, messages=messages, calls=10, coalesce=coalesce)
        emulator.stop()
        print("delivery:", results["delivery"][-2:], flush=True)

    # 6. Micro-benchmarks.
    results["micro"] = criterion()
    results_file.write_text(json.dumps({"results": results, "quick": args.quick}, indent=1))
    write_report(results, quick=args.quick)
    print((ROOT / "benches" / "README.md").read_text())


def repeated(d):
    return f" ({d['duplicates']} repeated)" if d["duplicates"] else ""


def replicas_section(p):
    """The PostgreSQL and failover table, from `benches/replicas.py`'s results."""
    i = p["ingest"]
    row = lambda name, m: f"| {name} | {m['rps']:,.0f} req/s | {m['p50']:.2f} ms | {m['p99']:.2f} ms |"
    lines = [
        "",
        "## Several replicas on PostgreSQL (`python3 benches/replicas.py`)",
        "",
        f"Written on {p['when']}; machine: {p['machine']}. PostgreSQL 15 runs on the same two cores as the relays and the",
        f"load generator (oha, {p['seconds']} s each, 32 connections in all; the two-replica run splits them 16 and 16 and",
        "reports the sum of both rates and the worse of both percentiles). Not the default configuration: one event body repeated,",
        "so `dedup.window = \"0s\"` (the default would refuse every repeat). Every request is a durable acceptance, with",
        "the console's recent events kept (the default; one more row per event: an A/B run on SQLite measured 8 to 14%",
        "fewer requests per second with them, `admin.keep_events = \"0s\"` turns them off). Repeated runs here varied",
        "by up to a quarter (`benches/ingest.py`'s distinct events, dedup on, are the default configuration's figures).",
        "",
        "| store | ingest | p50 | p99 |",
        "| --- | --- | --- | --- |",
        row("SQLite (embedded), one relay", i["sqlite"]),
        row("PostgreSQL, one relay", i["postgres"]),
        row("PostgreSQL, two relays at once", i["postgres_two"]),
        "",
        "Failover: two relays on one database; the one holding the channel's lease is killed with SIGKILL at a random",
        "point of its renewal period; the time until the other holds the channel (`callrelay_lane_held`, polled every 10 ms).",
        "",
        "| `store.lease` | kills | median | worst | bound (lease + 1 s: a relay asks every second for a channel it does not hold) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in p["failover"]:
        lines.append(f"| {f['lease']} s | {f['trials']} | {f['median']:.1f} s | {f['max']:.1f} s | {f['lease'] + 1:.1f} s |")
    return lines


def write_report(r, quick):
    bare, relay, steady = r["bare"], r["relay"], r["steady"]
    share = relay["rps"] / bare["rps"]
    mb = lambda kb: kb / 1024
    lines = [
        "# callrelay benchmarks",
        "",
        "Written by `python3 benches/load.py`" + (" --quick" if quick else "") + f" on {r.get('date', time.strftime('%Y-%m-%d'))}.",
        f"Machine: {r['machine']}.",
        "Rerun with `python3 benches/load.py` (about fifteen minutes; `--quick` for a smoke test). Load generator: oha, 32 connections,",
        "the same `message` event body for both servers. Targets are goals read from this table, never asserted by tests.",
        "",
    ]
    ingest = ROOT / "benches" / "ingest.json"
    if ingest.exists():  # benches/ingest.py's run, its section rendered with it
        lines += json.loads(ingest.read_text())["section"]
    lines += [
        "## Results",
        "",
        "| measure | result | target | met |",
        "| --- | --- | --- | --- |",
        f"| ingest ceiling: bare actix-web JSON handler | {bare['rps']:,.0f} req/s, p50 {bare['p50']:.2f} ms, p99 {bare['p99']:.2f} ms | | |",
        f"| ingest: relay, durable acceptance, dedup off, one body repeated | {relay['rps']:,.0f} req/s, p50 {relay['p50']:.2f} ms, p99 {relay['p99']:.2f} ms | | |",
        f"| relay's share of the ceiling, this measure (the default configuration's is in the section above) | {share:.0%} | at least 50% | {'yes' if share >= 0.5 else 'no'} |",
    ]
    if "unrouted" in r:
        u = r["unrouted"]
        lines.append(f"| ingest with no route matching (nothing stored) | {u['rps']:,.0f} req/s ({u['rps'] / bare['rps']:.0%} of the ceiling), p99 {u['p99']:.2f} ms | | |")
    if "end_to_end" in r:
        e = r["end_to_end"]
        lines.append(f"| end to end at a steady {e['rate']} events/s, unlimited platform: relay's 200 to post arrived ({e['arrived']:,} of {e['events']:,}) | p50 {e['p50']:.2f} ms, p99 {e['p99']:.2f} ms, max {e['max']:.1f} ms | | |")
    lines += [
        f"| latency at 1,000 req/s (corrected) | p50 {steady['p50']:.2f} ms, p99 {steady['p99']:.2f} ms, p99.9 {steady['p999']:.2f} ms | p99 under 5 ms | {'yes' if steady['p99'] < 5 else 'no'} |",
        f"| memory idle | {mb(r['idle_rss_kb']):.1f} MB resident | under 30 MB | {'yes' if mb(r['idle_rss_kb']) < 30 else 'no'} |",
        f"| memory peak under ingest load | {mb(r['load_peak_rss_kb']):.1f} MB | | |",
        f"| memory with {r['queued']:,} events queued behind a stopped endpoint | {mb(r['queued_rss_kb']):.1f} MB resident | under 150 MB with 100,000 | {'yes' if mb(r['queued_rss_kb']) < 150 else 'no'} |",
        f"| start-up, exec to first 200 on /healthz (median of 5) | {r['startup_ms']:.0f} ms | under 200 ms | {'yes' if r['startup_ms'] < 200 else 'no'} |",
        "",
        "## Delivery against the platforms' limits",
        "",
        "Slack and Discord are emulated on loopback (`examples/platform_emulator.rs`) with their documented limits: Slack 1 post/s",
        "per webhook, Discord 5 per 2 s and 30 per 60 s, answering 429 beyond them. Events are sent by 10 concurrent calls;",
        "every message goes to both platforms, and so does each call's `call_ended`. *Minimum* is the earliest the last post",
        "could leave under the limit: for the posts the relay made, and for one post per event (no coalescing).",
        "",
        "| platform | coalescing | events | posts | time | minimum for these posts | minimum at one post per event | 429s | all arrived, in order |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for d in r["delivery"]:
        lines.append(
            f"| {d['platform']} | {'on' if d['coalesce'] else 'off'} | {d['events']} | {d['posts']} | {d['seconds']:.1f} s | {d['min_posts']:.1f} s | {d['min_events']:.1f} s | {d['limited']} | "
            f"{'yes' if d['complete'] and d['in_order'] else 'NO'}{repeated(d)} |"
        )
    lines += ["", "## Micro-benchmarks (criterion, `cargo bench --bench micro`)", "", "| benchmark | median time |", "| --- | --- |"]
    lines += [f"| {name} | {t} |" for name, t in r["micro"]]
    replicas = ROOT / "benches" / "replicas.json"
    if replicas.exists():
        lines += replicas_section(json.loads(replicas.read_text()))
    analysis = ROOT / "benches" / "ANALYSIS.md"
    if analysis.exists():
        lines += ["", analysis.read_text().rstrip()]
    lines += ["", "Raw numbers: `benches/results.json`. The report alone: `python3 benches/load.py --report-only`.", ""]
    (ROOT / "benches" / "README.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
