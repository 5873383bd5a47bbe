#!/usr/bin/env python3
"""Loopback HTTP(S) server for SluiceHTTP tests.

Usage: http_test_server.py PORT READY_FILE [--cert C --key K [--client-ca CA]]
Writes READY_FILE once listening. Endpoints:
  /echo              JSON of method, path, headers, body (base64-free: utf-8 text)
  /status/N[?key=K]  answers status N (and counts requests for K, see /count)
  /slow?ms=N         answers after N milliseconds
  /bytes?n=N[&chunked=1]  a body of N bytes, with Content-Length or chunked
  /flaky?key=K&fail=N&retry_after=S   the first N requests for K answer 503 (Retry-After: S), then 200
  /hang?id=X         never answers; records when the client closes the connection
  /state?id=X        "open", "closed" or "unknown" for a /hang or /drip id; /count?key=K the request count for K
  /healthz[?key=K]   a health check: its status, X-Version header and body {"version": V} (200, v1 until /set-health);
                     counts requests for K like /status
  /set-health?status=N&version=V   what /healthz answers from now on
  /open              how many /hang requests are open right now
  /record?key=K[&fail=N]  remembers the request's headers under K; answers 401 to the first N, then {"value": 1}
  /recorded?key=K    JSON of the headers (lower-case names) of the last /record request for K
  /files/NAME        the file NAME of the READY_FILE's folder (a JWKS, a discovery document), 404 if absent;
                     counted under /count?key=files/NAME
  /latest/...        a stand-in for the EC2 instance metadata service v2: PUT /latest/api/token (with the
                     X-aws-ec2-metadata-token-ttl-seconds header) gives a session token; GET
                     /latest/meta-data/iam/security-credentials/ (role sluice-node-role) and .../sluice-node-role
                     (credentials N: AccessKeyId ASIAIMDSN, expiring in 6 h) answer 401 without a session token it
                     gave; counted under /count?key=imds-token and imds-credentials
  /drip?id=X&count=N&every_ms=M[&hold=1]  a chunked body: N lines "chunk I" M ms apart; with hold=1 it then waits
                     (state "open") until /release?id=X, or the client closes ("closed"), before "end" ends the body
"""
import json, os, select, signal, socket, ssl, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

LOCK = threading.Lock()
COUNTS = {}
HANGS = {}
OPEN_HANGS = [0]
RELEASED = set()
RECORDED = {}
HEALTH = {"status": 200, "version": "v1"}
IMDS_SESSIONS = set()
FILES_DIR = ["."]


def wait_for_close(conn, deadline, released=None):
    """Waits until the client closes `conn` (True), `released` is set for it, or the deadline passes (False)."""
    while time.time() < deadline:
        if released is not None:
            with LOCK:
                if released in RELEASED:
                    return False
        readable, _, _ = select.select([conn], [], [], 0.05)
        if readable:
            try:
                if conn.recv(1, socket.MSG_PEEK) == b"":
                    return True
            except (ConnectionResetError, ssl.SSLError, OSError):
                return True
    return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def instance_metadata(self, path):
        if path == "/latest/api/token":
            if self.command != "PUT" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self.reply(400, b"a PUT with X-aws-ec2-metadata-token-ttl-seconds is needed")
            with LOCK:
                COUNTS["imds-token"] = COUNTS.get("imds-token", 0) + 1
                session = "imds-session-%d-%s" % (COUNTS["imds-token"], os.urandom(8).hex())
                IMDS_SESSIONS.add(session)
            return self.reply(200, session.encode())
        with LOCK:
            known = self.headers.get("X-aws-ec2-metadata-token") in IMDS_SESSIONS
        if not known:
            return self.reply(401, b"")
        base = "/latest/meta-data/iam/security-credentials/"
        if path == base:
            return self.reply(200, b"sluice-node-role")
        if path == base + "sluice-node-role":
            with LOCK:
                COUNTS["imds-credentials"] = COUNTS.get("imds-credentials", 0) + 1
                n = COUNTS["imds-credentials"]
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 6 * 3600))
            body = {"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIAIMDS%d" % n,
                    "SecretAccessKey": "imds-secret-%d-wJalrXUtnFEMI" % n, "Token": "imds-session-token-%d" % n,
                    "Expiration": expires, "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            return self.reply(200, json.dumps(body).encode(), [("Content-Type", "text/plain")])
        return self.reply(404, b"")

    def handle_any(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if url.path == "/healthz":
            with LOCK:
                if "key" in query:
                    COUNTS[query["key"]] = COUNTS.get(query["key"], 0) + 1
                status, version = HEALTH["status"], HEALTH["version"]
            body = json.dumps({"version": version}).encode()
            return self.reply(status, body, [("Content-Type", "application/json"), ("X-Version", version)])
        if url.path.startswith("/files/"):
            name = url.path[len("/files/"):]
            with LOCK:
                COUNTS["files/" + name] = COUNTS.get("files/" + name, 0) + 1
            path = os.path.join(FILES_DIR[0], name)
            if ".." in name.split("/") or not os.path.isfile(path):
                return self.reply(404, b"")
            with open(path, "rb") as f:
                return self.reply(200, f.read(), [("Content-Type", "application/json")])
        if url.path.startswith("/latest/"):
            return self.instance_metadata(url.path)
        if url.path == "/set-health":
            with LOCK:
                HEALTH["status"] = int(query.get("status", HEALTH["status"]))
                HEALTH["version"] = query.get("version", HEALTH["version"])
            return self.reply(200, b"ok")
        if url.path == "/echo":
            payload = {"method": self.command, "path": self.path,
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "body": body.decode("utf-8", "replace")}
            return self.reply(200, json.dumps(payload).encode(), [("Content-Type", "application/json")])
        if url.path.startswith("/status/"):
            if "key" in query:
                with LOCK:
                    COUNTS[query["key"]] = COUNTS.get(query["key"], 0) + 1
            return self.reply(int(url.path.split("/")[2]), b"status")
        if url.path == "/slow":
            time.sleep(int(query.get("ms", "1000")) / 1000)
            return self.reply(200, b"slow")
        if url.path == "/bytes":
            n = int(query["n"])
            if query.get("chunked") == "1":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"x" * 65536
                left = n
                try:
                    while left > 0:
                        part = chunk[:min(left, len(chunk))]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                        left -= len(part)
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                return
            return self.reply(200, b"x" * n)
        if url.path == "/flaky":
            key = query["key"]
            with LOCK:
                COUNTS[key] = COUNTS.get(key, 0) + 1
                count = COUNTS[key]
            if count <= int(query.get("fail", "1")):
                return self.reply(503, b"busy", [("Retry-After", query.get("retry_after", "0"))])
            return self.reply(200, b"ok after %d" % count)
        if url.path == "/record":
            key = query["key"]
            with LOCK:
                RECORDED[key] = {k.lower(): v for k, v in self.headers.items()}
                COUNTS["record:" + key] = COUNTS.get("record:" + key, 0) + 1
                count = COUNTS["record:" + key]
            if count <= int(query.get("fail", "0")):
                return self.reply(401, b'{"error": "unauthorised"}', [("Content-Type", "application/json")])
            return self.reply(200, b'{"value": 1}', [("Content-Type", "application/json")])
        if url.path == "/recorded":
            with LOCK:
                payload = json.dumps(RECORDED.get(query["key"], {})).encode()
            return self.reply(200, payload, [("Content-Type", "application/json")])
        if url.path == "/count":
            with LOCK:
                return self.reply(200, str(COUNTS.get(query["key"], 0)).encode())
        if url.path == "/hang":
            ident = query["id"]
            with LOCK:
                HANGS[ident] = "open"
                OPEN_HANGS[0] += 1
            deadline = time.time() + 30
            conn = self.connection
            while time.time() < deadline:
                readable, _, _ = select.select([conn], [], [], 0.05)
                if readable:
                    try:
                        if conn.recv(1, socket.MSG_PEEK) == b"":
                            break
                    except (ConnectionResetError, ssl.SSLError, OSError):
                        break
            with LOCK:
                HANGS[ident] = "closed" if time.time() < deadline else "timeout"
                OPEN_HANGS[0] -= 1
            self.close_connection = True
            return
        if url.path == "/drip":
            ident = query.get("id", "")
            with LOCK:
                HANGS[ident] = "open"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            closed = False
            try:
                for i in range(int(query.get("count", "1"))):
                    if i:
                        time.sleep(int(query.get("every_ms", "0")) / 1000)
                    line = b"chunk %d\n" % i
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                if query.get("hold") == "1":
                    closed = wait_for_close(self.connection, time.time() + 30, released=ident)
                if not closed:
                    self.wfile.write(b"4\r\nend\n\r\n0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            with LOCK:
                HANGS[ident] = "closed" if closed else "done"
            self.close_connection = True
            return
        if url.path == "/release":
            with LOCK:
                RELEASED.add(query["id"])
            return self.reply(200, b"released")
        if url.path == "/open":
            with LOCK:
                return self.reply(200, str(OPEN_HANGS[0]).encode())
        if url.path == "/state":
            with LOCK:
                return self.reply(200, HANGS.get(query["id"], "unknown").encode())
        return self.reply(404, b"not found")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True


def exit_with_parent(parent):
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main():
    # The test runner may hand us SIGTERM ignored; take it back so ManagedProcess.stop() ends us at once.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
    threading.Thread(target=exit_with_parent, args=(os.getppid(),), daemon=True).start()
    port, ready = int(sys.argv[1]), sys.argv[2]
    FILES_DIR[0] = os.path.dirname(os.path.abspath(ready))
    args = dict(zip(sys.argv[3::2], sys.argv[4::2]))
    server = Server(("127.0.0.1", port), Handler)
    if "--cert" in args:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args["--cert"], args["--key"])
        if "--client-ca" in args:
            context.verify_mode = ssl.CERT_REQUIRED
            # Under TLS 1.3 the server rejects a missing client certificate after the client's handshake is done,
            # so the client sees either the alert or a reset depending on timing; TLS 1.2 rejects in the handshake.
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.load_verify_locations(args["--client-ca"])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(ready, "w") as f:
        f.write("ready")
    server.serve_forever()


if __name__ == "__main__":
    main()
