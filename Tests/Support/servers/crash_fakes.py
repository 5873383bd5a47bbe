#!/usr/bin/env python3
"""Loopback fake router and metrics endpoint for the controller crash test.

Usage: crash_fakes.py PORT READY_FILE
Writes READY_FILE once listening. State lives in memory for the server's lifetime, across the
restarts of the controller under test. Endpoints (NAME is a strategy name):
  PUT  /router/NAME            body: the canary weight 0..100; remembered with its history
  GET  /router/NAME            {"weight": N, "history": [...], "finalized": K}
  POST /router/NAME/finalize   counts finalizations
  GET  /metrics/NAME?breachAt=W  {"value": 0.5} while the router's weight is W, else {"value": 0.01}
  POST /webhook/NAME           a webhook receiver: remembers the body's seq and the X-Sluice-Seq header; the
                               first delivery of every fifth seq answers 503, so a retry is needed
  GET  /webhook/NAME           {"received": [seq, ...] in arrival order, "mismatched": N headers that disagreed}
"""
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

LOCK = threading.Lock()
ROUTERS = {}
WEBHOOKS = {}


def router(name):
    return ROUTERS.setdefault(name, {"weight": 0, "history": [], "finalized": 0})


def webhook(name):
    return WEBHOOKS.setdefault(name, {"received": [], "mismatched": 0, "refused": []})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, payload=None):
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def parts(self):
        url = urlparse(self.path)
        return [p for p in url.path.split("/") if p], {k: v[0] for k, v in parse_qs(url.query).items()}

    def do_GET(self):
        parts, query = self.parts()
        with LOCK:
            if len(parts) == 2 and parts[0] == "router":
                return self.reply(200, router(parts[1]))
            if len(parts) == 2 and parts[0] == "webhook":
                state = webhook(parts[1])
                return self.reply(200, {"received": state["received"], "mismatched": state["mismatched"]})
            if len(parts) == 2 and parts[0] == "metrics":
                breach_at = int(query.get("breachAt", "-1"))
                value = 0.5 if router(parts[1])["weight"] == breach_at else 0.01
                return self.reply(200, {"value": value})
        self.reply(404, {"error": "unknown path"})

    def do_PUT(self):
        parts, _ = self.parts()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if len(parts) == 2 and parts[0] == "router":
            try:
                weight = int(body.decode().strip())
            except ValueError:
                return self.reply(400, {"error": "the body must be an integer weight"})
            if not 0 <= weight <= 100:
                return self.reply(400, {"error": "weight out of range"})
            with LOCK:
                state = router(parts[1])
                state["weight"] = weight
                state["history"].append(weight)
            return self.reply(204)
        self.reply(404, {"error": "unknown path"})

    def do_POST(self):
        parts, _ = self.parts()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if len(parts) == 2 and parts[0] == "webhook":
            try:
                seq = int(json.loads(body)["seq"])
            except (ValueError, KeyError, TypeError):
                return self.reply(400, {"error": "the body must be an event with a seq"})
            with LOCK:
                state = webhook(parts[1])
                if seq % 5 == 0 and seq not in state["refused"]:
                    state["refused"].append(seq)
                    return self.reply(503, {"error": "try again"})
                state["received"].append(seq)
                if self.headers.get("X-Sluice-Seq") != str(seq):
                    state["mismatched"] += 1
            return self.reply(204)
        if len(parts) == 3 and parts[0] == "router" and parts[2] == "finalize":
            with LOCK:
                router(parts[1])["finalized"] += 1
            return self.reply(204)
        self.reply(404, {"error": "unknown path"})


class Server(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True


def main():
    port, ready = int(sys.argv[1]), sys.argv[2]
    server = Server(("127.0.0.1", port), Handler)
    with open(ready, "w") as f:
        f.write("ready\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
