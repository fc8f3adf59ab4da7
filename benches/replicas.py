#!/usr/bin/env python3
"""callrelay on PostgreSQL: ingest next to SQLite under the same load, and the failover time after
`kill -9` of the relay sending for a channel.

    python3 benches/replicas.py           # about four minutes; writes benches/replicas.json
    python3 benches/replicas.py --ingest  # the ingest part again, keeping the failover numbers
    python3 benches/load.py --report-only # folds it into benches/README.md

Needs a PostgreSQL server: `CALLRELAY_BENCH_POSTGRES`, else postgres://postgres@127.0.0.1:5432/test
(each run uses a fresh schema in it). Builds what `benches/load.py` builds.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402  (the shared helpers: build, Proc, oha, relay_config)

ROOT = load.ROOT
SERVER = os.environ.get("CALLRELAY_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
SECONDS = 15


def fresh_schema():
    name = f"bench_{int(time.time() * 1000)}_{os.getpid()}"
    subprocess.run(["psql", SERVER, "-qc", f"CREATE SCHEMA {name}"], check=True)
    sep = "&" if "?" in SERVER else "?"
    return f"{SERVER}{sep}options=-csearch_path%3D{name}"


def on_postgres(config, url, lease=None):
    """Rewrites a load.py configuration to use the database at `url`."""
    text = config.read_text()
    start = text.index("[store]")
    end = text.index("[", start + 1)
    store = f'[store]\nurl = "{url}"\n' + (f'lease = "{lease}"\n' if lease else "")
    config.write_text(text[:start] + store + text[end:])
    return config


def relay(config):
    return load.start_relay(config)


def holds(port):
    try:
        return 'callrelay_lane_held{channel="slack"} 1' in load.get(port, "/metrics")[1]
    except OSError:
        return False


def ingest(tmp, body, sink_port, seconds):
    """The same load (oha, 32 connections) on SQLite, one relay on PostgreSQL, and two relays on one
    PostgreSQL (16 connections each, at once)."""
    out = {}
    d = Path(tempfile.mkdtemp(dir=tmp))
    r = relay(load.relay_config(d, sink_port, dedup=False, both=False))
    out["sqlite"] = load.oha(f"http://127.0.0.1:{r.port}/webhook", body, seconds=seconds)
    r.stop()
    d = Path(tempfile.mkdtemp(dir=tmp))
    r = relay(on_postgres(load.relay_config(d, sink_port, dedup=False, both=False), fresh_schema()))
    out["postgres"] = load.oha(f"http://127.0.0.1:{r.port}/webhook", body, seconds=seconds)
    r.stop()
    d = Path(tempfile.mkdtemp(dir=tmp))
    config = on_postgres(load.relay_config(d, sink_port, dedup=False, both=False), fresh_schema())
    a, b = relay(config), relay(config)
    runs = {}
    threads = [
        threading.Thread(target=lambda k, p: runs.__setitem__(k, load.oha(f"http://127.0.0.1:{p}/webhook", body, seconds=seconds, conns=16)), args=(k, p))
        for k, p in (("a", a.port), ("b", b.port))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["postgres_two"] = {
        "rps": runs["a"]["rps"] + runs["b"]["rps"],
        "p50": max(runs["a"]["p50"], runs["b"]["p50"]),
        "p99": max(runs["a"]["p99"], runs["b"]["p99"]),
    }
    a.stop()
    b.stop()
    return out


def failover(tmp, sink_port, lease, trials):
    """Two relays; the one holding the channel is killed with SIGKILL; how long until the other
    holds it (polled every 10 ms). `lease` as in `store.lease`."""
    times = []
    d = Path(tempfile.mkdtemp(dir=tmp))
    config = on_postgres(load.relay_config(d, sink_port, dedup=False, both=False), fresh_schema(), lease=f"{lease}s")
    relays = [relay(config), relay(config)]
    for _ in range(trials):
        deadline = time.monotonic() + 60
        while True:
            held = [holds(r.port) for r in relays]
            if held.count(True) == 1:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("no single holder")
            time.sleep(0.05)
        # Wait a random part of a renewal period, so kills land anywhere in it.
        time.sleep(lease / 3 * (time.time() % 1))
        victim = held.index(True)
        relays[victim].p.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        survivor = relays[1 - victim]
        while not holds(survivor.port):
            time.sleep(0.01)
        times.append(time.monotonic() - killed)
        relays[victim].p.wait()
        relays[victim] = relay(config)
    for r in relays:
        r.stop()
    return {"lease": lease, "trials": trials, "median": statistics.median(times), "max": max(times), "times": times}


def main():
    load.build()
    tmp = tempfile.mkdtemp(prefix="callrelay-replicas-")
    body = Path(tmp) / "event.json"
    body.write_text(json.dumps({"event_type": "message", "call_id": "bench-call", "message": {"sender": "user", "message": "Hi, I need help with my order number 12345.", "sent_at": "2024-01-15T10:30:00Z"}, "call_data": {"userName": "John Doe", "agentId": "agent_456"}}))
    sink = load.Proc([str(load.TARGET / "examples" / "platform_emulator"), "127.0.0.1:0"])
    results = {"machine": load.machine(), "seconds": SECONDS, "when": time.strftime("%Y-%m-%d")}
    saved = ROOT / "benches" / "replicas.json"
    results["ingest"] = ingest(tmp, body, sink.port, SECONDS)
    print("ingest:", results["ingest"], flush=True)
    if "--ingest" in sys.argv and saved.exists():
        results["failover"] = json.loads(saved.read_text())["failover"]
    else:
        results["failover"] = [failover(tmp, sink.port, lease, trials) for lease, trials in ((15, 5), (3, 10))]
    print("failover:", results["failover"], flush=True)
    sink.stop()
    (ROOT / "benches" / "replicas.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
