#!/usr/bin/env python3
"""Ingest as users run it, side by side in one run: the bare actix-web handler (the ceiling), the
relay in its default configuration on SQLite and on PostgreSQL, and the relay with each feature
that costs a row per event turned off, so the table says what each costs.

Every request is a distinct `message` event over 100 calls (benches/distinct.lua); load from wrk
(2 threads, 32 connections, 8 s), rounds alternating between the servers so a noisy machine's
drift falls on all of them; medians of the rounds. Also machine time per request by thread (CPU
seconds from /proc divided by the requests wrk sent), steadier than req/s here.

    cargo build --release --examples && cargo build --release
    python3 benches/ingest.py [ROUNDS]        # default 3 (about five minutes); writes
                                              # benches/ingest.json and rewrites benches/README.md
                                              # (load.py's report, this run's section in it)
    python3 benches/ingest.py 1 bare sqlite   # only these rows, printed, nothing written
    python3 benches/ingest.py --latency       # the end-to-end measure again, into the saved run

Needs wrk (apt-get install wrk) and, for the PostgreSQL rows, a local server reachable as
postgres@127.0.0.1:5432 (trust); a database `callrelay_bench` is created and dropped per run.
"""
import json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET = ROOT / "target" / "release"
SCRIPT = HERE / "distinct.lua"
TICK = os.sysconf("SC_CLK_TCK")
PG = "postgres://postgres@127.0.0.1:5432/callrelay_bench"
sys.path.insert(0, str(HERE))
from ab import CONFIG, wait_port  # noqa: E402  (the shipped relay.toml's channels and routes, as ab.py runs them)
# name -> (description, environment overrides); None: the bare handler.
SERVERS = {
    "bare": ("bare actix-web handler: parse the JSON, answer 200 (the ceiling)", None),
    "sqlite": ("relay, SQLite, default configuration", {}),
    "sqlite-no-dedup": ("relay, SQLite, `dedup.window = \"0s\"`", {"CALLRELAY__DEDUP__WINDOW": "0s"}),
    "sqlite-no-recent": ("relay, SQLite, `admin.keep_events = \"0s\"`", {"CALLRELAY__ADMIN__KEEP_EVENTS": "0s"}),
    "sqlite-stripped": ("relay, SQLite, both off", {"CALLRELAY__DEDUP__WINDOW": "0s", "CALLRELAY__ADMIN__KEEP_EVENTS": "0s"}),
    "sqlite-unrouted": ("relay, no route matching and both off: the request path, nothing stored",
                        {"CALLRELAY__DEDUP__WINDOW": "0s", "CALLRELAY__ADMIN__KEEP_EVENTS": "0s", "UNROUTED": "1"}),
    "postgres": ("relay, PostgreSQL on this machine, default configuration", {"CALLRELAY__STORE__URL": PG}),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_by_thread(pid):
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            name = open(f"/proc/{pid}/task/{t}/comm").read().strip()
            fields = open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = re.sub(r"[-#]?\d+$", "", name) or name
        out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / TICK
    return out


def psql(sql):
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", sql], check=True,
                   capture_output=True)


def start(name, sink_port):
    port = free_port()
    d = Path(tempfile.mkdtemp(prefix="callrelay-ingest-"))
    env = SERVERS[name][1]
    if env is None:
        p = subprocess.Popen([str(TARGET / "examples" / "bare_ingest"), f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL)
    else:
        if "CALLRELAY__STORE__URL" in env:
            psql("DROP DATABASE IF EXISTS callrelay_bench")
            psql("CREATE DATABASE callrelay_bench")
        config = CONFIG
        if env.get("UNROUTED"):
            config = config.replace('events = ["message"]', 'events = ["call_ended"]')
        (d / "relay.toml").write_text(config)
        sink = f"http://127.0.0.1:{sink_port}"
        full = dict(os.environ, SLACK_WEBHOOK_URL=sink + "/services/T/B/bench", DISCORD_WEBHOOK_URL=sink + "/api/webhooks/1/bench",
                    CALLRELAY__SERVER__LISTEN=f"127.0.0.1:{port}", CALLRELAY__ADMIN__LISTEN="127.0.0.1:0", RUST_LOG="warn",
                    **env)
        p = subprocess.Popen([str(TARGET / "callrelay"), "--config", str(d / "relay.toml")], env=full,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    time.sleep(0.3)
    return p, port, d


def stop(p, d):
    p.terminate()
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    shutil.rmtree(d, ignore_errors=True)


def ms(text):
    found = re.match(r"([\d.]+)(us|ms|s)$", text)
    assert found, f"a latency wrk printed: {text!r}"
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def measure(name, sink_port, seconds=8):
    p, port, d = start(name, sink_port)
    before = cpu_by_thread(p.pid)
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", str(SCRIPT),
                          f"http://127.0.0.1:{port}/webhook"], capture_output=True, text=True).stdout
    after = cpu_by_thread(p.pid)
    stop(p, d)
    refused = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert not refused, f"{name} refused requests:\n{out}"
    n = int(re.search(r"(\d+) requests in", out).group(1))
    per = {k: (after[k] - before.get(k, 0)) / n * 1e6 for k in after if after[k] > before.get(k, 0)}
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99_ms": ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        "cpu_us": sum(per.values()),
        "by_thread": per,
    }


def main():
    if sys.argv[1:] == ["--latency"]:
        # The end-to-end measure again, into the saved run (a shared machine can be slow for a while).
        data = json.loads((HERE / "ingest.json").read_text())
        data["end_to_end"] = end_to_end_latency()
        data["section"] = section(data)
        (HERE / "ingest.json").write_text(json.dumps(data, indent=1))
        return write_readme()
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    only = sys.argv[2:]
    for name in list(SERVERS):
        if only and name not in only:
            del SERVERS[name]
    sink = subprocess.Popen([str(TARGET / "examples" / "platform_emulator"), "127.0.0.1:0"],
                            stdout=subprocess.PIPE, text=True)
    sink_port = int(re.search(r"(\d+)", sink.stdout.readline()).group(1))
    runs = {name: [] for name in SERVERS}
    try:
        for r in range(rounds):
            for name in SERVERS:
                runs[name].append(measure(name, sink_port))
                print(f"round {r + 1} {name}: {runs[name][-1]['rps']:,.0f} req/s, {runs[name][-1]['cpu_us']:.1f} µs CPU/request",
                      flush=True)
    finally:
        sink.terminate()
        psql("DROP DATABASE IF EXISTS callrelay_bench")
    med = {name: {k: statistics.median(run[k] for run in rs) for k in ("rps", "p50_ms", "p99_ms", "cpu_us")}
           for name, rs in runs.items()}
    for name, rs in runs.items():
        threads = {t for run in rs for t in run["by_thread"]}
        med[name]["by_thread"] = {t: statistics.median(run["by_thread"].get(t, 0) for run in rs) for t in threads}
    for name, m in med.items():
        print(f"median {name}: {m['rps']:,.0f} req/s, {m['cpu_us']:.1f} µs CPU/request", flush=True)
    if only:
        return
    psql("CHECKPOINT")  # the load rounds' writes flushed before the latency is measured
    time.sleep(5)
    latency = end_to_end_latency()
    data = {"date": str(date.today()), "machine": machine(), "rounds": rounds, "runs": runs, "medians": med,
            "end_to_end": latency}
    data["section"] = section(data)
    (HERE / "ingest.json").write_text(json.dumps(data, indent=1))
    write_readme()


def end_to_end_latency():
    """From the relay's 200 to the post arriving, at a steady 200 events/s (benches/load.py's
    measure), on SQLite and on PostgreSQL."""
    import load
    out = {}
    tmp = tempfile.mkdtemp(prefix="callrelay-e2e-")
    for store in ("sqlite", "postgres"):
        if store == "postgres":
            psql("DROP DATABASE IF EXISTS callrelay_bench")
            psql("CREATE DATABASE callrelay_bench")
            os.environ["CALLRELAY__STORE__URL"] = PG
        try:
            out[store] = load.end_to_end(tmp, rate=200, seconds=20)
        finally:
            os.environ.pop("CALLRELAY__STORE__URL", None)
        print(f"end to end at 200/s, {store}: {out[store]}", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def machine():
    cpu = subprocess.run(["sh", "-c", "nproc; grep -m1 'model name' /proc/cpuinfo | cut -d: -f2; uname -r; rustc --version"],
                         capture_output=True, text=True).stdout.split("\n")
    return f"{cpu[0]} cores ({cpu[1].strip()}), Linux {cpu[2]}, {cpu[3]}"


def section(data):
    """The README's section for a run, saved with it in benches/ingest.json; `load.py`'s report
    puts it before its own results."""
    med, rounds, latency = data["medians"], data["rounds"], data["end_to_end"]
    bare, sqlite, pg = med["bare"]["rps"], med["sqlite"]["rps"], med["postgres"]["rps"]
    lines = [
        "## Ingest in the default configuration (`python3 benches/ingest.py`)",
        "",
        f"Written by `python3 benches/ingest.py {rounds}` on {data['date']}; machine: {data['machine']}.",
        "wrk, 2 threads, 32 connections, 8 s per round, every request a distinct `message` over 100 calls",
        f"(`benches/distinct.lua`), the shipped channels and routes, {rounds} rounds alternating between the",
        "servers; medians. CPU is the server's machine time per request (all its threads; wrk's own is not counted).",
        "",
        "| server | req/s | of the ceiling | p50 | p99 | CPU per request | by thread (µs) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, (desc, _) in SERVERS.items():
        if name not in med:
            continue
        m = med[name]
        threads = ", ".join(f"{t.replace('|', '/')} {v:.1f}" for t, v in sorted(m["by_thread"].items(), key=lambda kv: -kv[1]) if v >= 0.05)
        lines.append(f"| {desc} | {m['rps']:,.0f} | {m['rps'] / bare:.0%} | {m['p50_ms']:.2f} ms | {m['p99_ms']:.2f} ms | "
                     f"{m['cpu_us']:.1f} µs | {threads} |")
    lines += [
        "",
        f"Durable SQLite ingest in the default configuration: **{sqlite / bare:.0%} of the bare handler** (target 50%: "
        f"{'met' if sqlite >= bare / 2 else 'not met'}); PostgreSQL: **{pg / sqlite:.0%} of SQLite** (target 50%: "
        f"{'met' if pg >= sqlite / 2 else 'not met'}). What each share is made of: "
        "[ANALYSIS.md](ANALYSIS.md#ingest-in-the-default-configuration).",
        "",
        "End to end at a steady 200 events/s (the relay's 200 to the post's arrival at an emulator without limits,",
        "`benches/load.py`'s measure: one Slack channel, coalescing off and its budget raised so only the relay is",
        "measured, not the defaults; target p99 under 5 ms on SQLite, under 50 ms on PostgreSQL):",
        "",
        "| store | events arrived | p50 | p99 | max |",
        "| --- | --- | --- | --- | --- |",
    ]
    for store, e in latency.items():
        lines.append(f"| {store} | {e['arrived']:,} of {e['events']:,} | {e['p50']:.2f} ms | {e['p99']:.2f} ms | {e['max']:.1f} ms |")
    return lines + [""]


def write_readme():
    """Rewrites benches/README.md from the saved runs (results.json, replicas.json, ingest.json)."""
    import load
    saved = json.loads((HERE / "results.json").read_text())
    load.write_report(saved["results"], quick=saved["quick"])

if __name__ == "__main__":
    main()
