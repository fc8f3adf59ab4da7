#!/usr/bin/env python3
"""A/B ingest of two callrelay binaries, as users run them: the shipped relay.toml's channels and
routes with every default (dedup on, recent events kept; written out here, so that builds whose
files differ read the same one), every request a distinct `message` event over 100 calls (benches/distinct.lua),
load from wrk (2 threads, 32 connections), rounds alternating between the binaries so a noisy
machine's drift falls on both. A second row turns dedup and recent events off.

    python3 benches/ab.py OLD_BINARY NEW_BINARY [ROUNDS]

Needs wrk (apt-get install wrk). The channels post to a local sink that answers 200.
"""
import http.server, os, re, shutil, socket, statistics, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
# The shipped relay.toml's channels and routes; every other key at its default.
CONFIG = """
[channels.live]
kind = "slack"
webhook_url = "${SLACK_WEBHOOK_URL}"

[channels.summaries]
kind = "discord"
webhook_url = "${DISCORD_WEBHOOK_URL}"
username = "Call Relay"

[[routes]]
name = "live messages"
events = ["message"]
channels = ["live"]

[[routes]]
name = "summaries"
events = ["call_ended"]
channels = ["summaries"]

[[routes]]
name = "connection test"
events = ["test"]
channels = ["live"]
"""
SCRIPT = os.path.join(HERE, "distinct.lua")
PORT = 18080


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def wait_port(port):
    """Returns once something listens on `port` (20 s at most)."""
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def run(binary, sink, stripped, seconds=8):
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "relay.toml"), "w") as f:
        f.write(CONFIG)
    env = dict(os.environ, SLACK_WEBHOOK_URL=sink + "/services/T/B/x", DISCORD_WEBHOOK_URL=sink + "/api/webhooks/1/x",
               CALLRELAY__SERVER__LISTEN=f"127.0.0.1:{PORT}", CALLRELAY__ADMIN__LISTEN="127.0.0.1:0", RUST_LOG="warn")
    if stripped:
        env.update(CALLRELAY__DEDUP__WINDOW="0s", CALLRELAY__ADMIN__KEEP_EVENTS="0s")
    relay = subprocess.Popen([binary, "--config", os.path.join(d, "relay.toml")], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(PORT)
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "-s", SCRIPT, f"http://127.0.0.1:{PORT}/webhook"],
                         capture_output=True, text=True).stdout
    relay.terminate()
    relay.wait()
    shutil.rmtree(d)
    refused = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert not refused, f"{binary} refused requests:\n{out}"
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main():
    old, new = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sink = f"http://127.0.0.1:{server.server_address[1]}"
    results = {}
    for r in range(rounds):
        for stripped in (False, True):
            for name, binary in (("old", old), ("new", new)):
                rps = run(binary, sink, stripped)
                results.setdefault((stripped, name), []).append(rps)
                print(f"round {r + 1}: {name} {'dedup and recent off' if stripped else 'default'}: {rps:,.0f} req/s",
                      flush=True)
    print("\n| configuration | old | new | new/old per round |\n| --- | --- | --- | --- |")
    for stripped in (False, True):
        o, n = results[(stripped, "old")], results[(stripped, "new")]
        ratios = ", ".join(f"{b / a:.2f}" for a, b in zip(o, n))
        label = "dedup and recent events off" if stripped else "shipped relay.toml"
        print(f"| {label} | {statistics.median(o):,.0f} | {statistics.median(n):,.0f} | {ratios} |")


if __name__ == "__main__":
    main()
