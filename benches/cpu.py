#!/usr/bin/env python3
"""Machine time per request, by thread: CPU seconds the server spent (user + system, from
/proc) divided by the requests oha sent. Steadier than req/s on a shared machine, and it says
where the time goes (actix workers vs the store's writer thread).

    python3 benches/cpu.py [REQUESTS] [bare|relay|unrouted ...]

Uses benches/load.py's helpers; run `python3 benches/load.py --quick` once first to build.
"""
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_thread(pid):
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        name = open(f"/proc/{pid}/task/{t}/comm").read().strip()
        fields = open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / TICK
    return out


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    which = sys.argv[2:] or ["bare", "relay", "unrouted"]
    tmp = Path(tempfile.mkdtemp(prefix="callrelay-cpu-"))
    body = tmp / "event.json"
    body.write_text(json.dumps({"event_type": "message", "call_id": "bench-call", "message": {"sender": "user", "message": "Hi, I need help with my order number 12345.", "sent_at": "2024-01-15T10:30:00Z"}, "call_data": {"userName": "John Doe", "agentId": "agent_456"}}))
    sink = load.Proc([str(load.TARGET / "examples" / "platform_emulator"), "127.0.0.1:0"])
    for w in which:
        if w == "bare":
            server = load.Proc([str(load.TARGET / "examples" / "bare_ingest"), "127.0.0.1:0"])
        else:
            routes = '[[routes]]\nevents = ["call_ended"]\nchannels = ["discord"]' if w == "unrouted" else None
            server = load.start_relay(load.relay_config(Path(tempfile.mkdtemp(dir=tmp)), sink.port, dedup=False, both=False, routes=routes))
        time.sleep(0.5)
        before = cpu_by_thread(server.p.pid)
        r = load.oha(f"http://127.0.0.1:{server.port}/webhook", body, seconds=None, n=n)
        after = cpu_by_thread(server.p.pid)
        per = {k: round((after[k] - before.get(k, 0)) / n * 1e6, 2) for k in after if after[k] > before.get(k, 0)}
        print(f"{w}: {sum(per.values()):.2f} µs CPU per request at {r['rps']:,.0f} req/s; by thread: {per}")
        server.stop()
    sink.stop()


if __name__ == "__main__":
    main()
