#!/usr/bin/env python3
"""A loopback proxy in front of a real Caddy admin API that can refuse writes, for tests of what Sluice reports
when its router does not take a weight change.

Usage: admin_proxy.py PORT UPSTREAM_URL STATE_DIR
Writes STATE_DIR/ready once listening. Every request is recorded as one JSON line in STATE_DIR/requests.jsonl
({"method", "path", "headers": {lowercased name: value}}) and forwarded to UPSTREAM_URL as it came (method, path,
headers, body), except while STATE_DIR/fail-writes exists: then any request other than GET answers
500 {"error": "..."} without reaching Caddy, as an admin API whose config store fails would.
"""
import json, os, sys, threading, urllib.error, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, UPSTREAM, STATE = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}
RECORD_LOCK = threading.Lock()


def record(method, path, headers):
    line = json.dumps({"method": method, "path": path, "headers": {k.lower(): v for k, v in headers.items()}})
    with RECORD_LOCK, open(os.path.join(STATE, "requests.jsonl"), "a") as log:
        log.write(line + "\n")


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        record(self.command, self.path, self.headers)
        if self.command != "GET" and os.path.exists(os.path.join(STATE, "fail-writes")):
            self.answer(500, {"Content-Type": "application/json"}, b'{"error":"saving the config failed (test proxy)"}')
            return
        request = urllib.request.Request(UPSTREAM + self.path, data=body, method=self.command)
        for name, value in self.headers.items():
            if name.lower() not in HOP_BY_HOP:
                request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                self.answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            self.answer(error.code, dict(error.headers), error.read())
        except OSError as error:
            self.answer(502, {"Content-Type": "text/plain"}, str(error).encode())

    def answer(self, status, headers, body):
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward


server = ThreadingHTTPServer(("127.0.0.1", PORT), Proxy)
open(os.path.join(STATE, "ready"), "w").close()
server.serve_forever()
