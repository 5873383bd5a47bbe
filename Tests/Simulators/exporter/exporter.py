#!/usr/bin/env python3
"""A test exporter: a tiny service that counts its own requests the way real services do.

GET /          serves one request; counts http_requests_total{app,track,code} and observes
               http_request_duration_seconds (a histogram) with the configured added latency.
GET /metrics   the Prometheus text format of both.
GET /control   the current behaviour as JSON.
POST /control  JSON {"error_rate": 0.1, "latency_ms": 300} changes behaviour for the next requests.

Errors are spread deterministically (request n fails when the running error count is below
round(error_rate * n)), so a test sees the rate it asked for, not a random one near it.
Test support only: never part of the `sluice` binary. Python 3 standard library only.
"""

import argparse
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class State:
    """Behaviour and counters, shared by the handler threads under one lock."""

    def __init__(self, app, track):
        self.app = app
        self.track = track
        self.lock = threading.Lock()
        self.error_rate = 0.0
        self.latency_ms = 0.0
        # Both codes exist from the start (at 0), so a ratio of 5xx over all is 0, not empty,
        # before the first error: the convention client libraries recommend.
        self.requests = {"200": 0, "500": 0}
        self.served = 0
        self.failed = 0
        self.bucket_counts = [0] * len(BUCKETS)
        self.duration_sum = 0.0
        self.duration_count = 0

    def next_outcome(self):
        """Whether the next request fails, and how long it is delayed, in seconds."""
        with self.lock:
            self.served += 1
            fail = self.failed < round(self.error_rate * self.served)
            if fail:
                self.failed += 1
            return fail, self.latency_ms / 1000.0

    def observe(self, code, seconds):
        with self.lock:
            self.requests[code] = self.requests.get(code, 0) + 1
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self.bucket_counts[i] += 1
            self.duration_sum += seconds
            self.duration_count += 1

    def control(self, body):
        with self.lock:
            if "error_rate" in body:
                rate = float(body["error_rate"])
                if not 0.0 <= rate <= 1.0:
                    raise ValueError("error_rate must be within 0...1")
                self.error_rate = rate
                # Restart the spread so the new rate applies from the next request on.
                self.served = 0
                self.failed = 0
            if "latency_ms" in body:
                latency = float(body["latency_ms"])
                if latency < 0:
                    raise ValueError("latency_ms must not be negative")
                self.latency_ms = latency
            return self.behaviour()

    def behaviour(self):
        return {"error_rate": self.error_rate, "latency_ms": self.latency_ms}

    def exposition(self):
        labels = f'app="{self.app}",track="{self.track}"'
        with self.lock:
            lines = [
                "# HELP http_requests_total Requests served, by status code.",
                "# TYPE http_requests_total counter",
            ]
            for code in sorted(self.requests):
                lines.append(f'http_requests_total{{{labels},code="{code}"}} {self.requests[code]}')
            lines += [
                "# HELP http_request_duration_seconds Time to serve a request.",
                "# TYPE http_request_duration_seconds histogram",
            ]
            for bound, count in zip(BUCKETS, self.bucket_counts):
                lines.append(f'http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {count}')
            lines.append(f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {self.duration_count}')
            lines.append(f"http_request_duration_seconds_sum{{{labels}}} {self.duration_sum}")
            lines.append(f"http_request_duration_seconds_count{{{labels}}} {self.duration_count}")
        return "\n".join(lines) + "\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes; no 40 ms delayed-ACK stall
    state = None  # set in main()

    def log_message(self, format, *args):  # keep test logs to what matters
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/metrics":
            self.reply(200, self.state.exposition(), "text/plain; version=0.0.4")
        elif self.path == "/control":
            with self.state.lock:
                behaviour = self.state.behaviour()
            self.reply(200, json.dumps(behaviour))
        elif self.path == "/" or self.path.startswith("/?"):
            started = time.monotonic()
            fail, delay = self.state.next_outcome()
            if delay > 0:
                time.sleep(delay)  # the added latency this exporter exists to simulate
            code = "500" if fail else "200"
            self.state.observe(code, time.monotonic() - started)
            self.reply(int(code), json.dumps({"code": int(code)}))
        else:
            self.reply(404, json.dumps({"error": f"no route {self.path}"}))

    def do_POST(self):
        if self.path != "/control":
            self.reply(404, json.dumps({"error": f"no route {self.path}"}))
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            self.reply(200, json.dumps(self.state.control(body)))
        except (ValueError, TypeError) as error:
            self.reply(400, json.dumps({"error": str(error)}))


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 drops connections under test load
    daemon_threads = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app", default="checkout")
    parser.add_argument("--track", default="canary")
    args = parser.parse_args()
    # A test stops this process with SIGTERM; the launcher may hand it a blocked or ignored SIGTERM.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    Handler.state = State(args.app, args.track)
    server = Server(("127.0.0.1", args.port), Handler)
    print(f"exporter listening on 127.0.0.1:{args.port} app={args.app} track={args.track}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
