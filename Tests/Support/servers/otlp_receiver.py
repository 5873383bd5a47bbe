#!/usr/bin/env python3
"""An OTLP/HTTP trace receiver for tests: what an OpenTelemetry collector checks of a JSON export, strictly.

Usage: otlp_receiver.py PORT STATE_DIR [--cert FILE --key FILE]
Writes STATE_DIR/ready once listening (HTTPS with --cert/--key).

POST /v1/traces with Content-Type application/json: the body is parsed with
google.protobuf.json_format.Parse(body, ExportTraceServiceRequest()) (opentelemetry-proto's generated message;
unknown fields, wrong types and malformed JSON fail). OTLP/JSON writes trace and span ids as hex where the protobuf
mapping has base64, so the parser reads the hex text as base64: the id is recovered by encoding those bytes as
base64 again, and must then be 32 (16 for spans) lowercase hex digits, as the OTLP specification requires.
Each accepted span is one JSON line in STATE_DIR/spans.jsonl: {traceId, spanId, parentSpanId, name, kind,
service, attributes: {key: value}}; the answer is 200 {} (an ExportTraceServiceResponse).
A refused body answers 400 and is recorded in STATE_DIR/errors.jsonl.
While STATE_DIR/unavailable holds a number N > 0, a request answers 503 and N goes down by one.
Every request's answer status is one line in STATE_DIR/requests.jsonl.
"""
import base64, json, os, re, ssl, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
except ImportError as error:
    sys.exit(f"otlp_receiver.py: {error}; install the receiver's packages with scripts/setup "
             "(pip install opentelemetry-proto protobuf into .tools/venv)")

PORT, STATE = int(sys.argv[1]), sys.argv[2]
LOCK = threading.Lock()
HEX32, HEX16 = re.compile(r"^[0-9a-f]{32}$"), re.compile(r"^[0-9a-f]{16}$")


def append(name, value):
    with LOCK, open(os.path.join(STATE, name), "a") as out:
        out.write(json.dumps(value) + "\n")


def hex_id(raw, pattern, what):
    text = base64.b64encode(raw).decode()
    if not pattern.match(text):
        raise ValueError(f"{what} is not lowercase hex of the right length: {text!r}")
    return text


def any_value(value):
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def spans_of(request):
    for resource_spans in request.resource_spans:
        resource = {kv.key: any_value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if span.end_time_unix_nano < span.start_time_unix_nano or span.start_time_unix_nano == 0:
                    raise ValueError(f"span {span.name}: bad times")
                yield {
                    "traceId": hex_id(span.trace_id, HEX32, "traceId"),
                    "spanId": hex_id(span.span_id, HEX16, "spanId"),
                    "parentSpanId": hex_id(span.parent_span_id, HEX16, "parentSpanId") if span.parent_span_id else None,
                    "name": span.name,
                    "kind": span.kind,
                    "service": resource.get("service.name"),
                    "scope": scope_spans.scope.name,
                    "attributes": {kv.key: any_value(kv.value) for kv in span.attributes},
                    "status": span.status.code,
                }


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        append("requests.jsonl", {"status": status})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        flag = os.path.join(STATE, "unavailable")
        with LOCK:
            left = int(open(flag).read() or "0") if os.path.exists(flag) else 0
            if left > 0:
                open(flag, "w").write(str(left - 1))
        if left > 0:
            return self.answer(503, {"message": "unavailable"})
        if self.path != "/v1/traces":
            return self.answer(404, {"message": f"no {self.path}"})
        if self.headers.get("Content-Type") != "application/json":
            append("errors.jsonl", {"error": f"Content-Type {self.headers.get('Content-Type')}"})
            return self.answer(415, {"message": "Content-Type must be application/json"})
        try:
            request = json_format.Parse(body, ExportTraceServiceRequest())
            spans = list(spans_of(request))
        except Exception as error:  # json_format.ParseError, ValueError
            append("errors.jsonl", {"error": str(error), "body": body.decode(errors="replace")[:2000]})
            return self.answer(400, {"message": str(error)})
        for span in spans:
            append("spans.jsonl", span)
        self.answer(200, {})


server = ThreadingHTTPServer(("127.0.0.1", PORT), Receiver)
if "--cert" in sys.argv:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[sys.argv.index("--cert") + 1], sys.argv[sys.argv.index("--key") + 1])
    server.socket = context.wrap_socket(server.socket, server_side=True)
open(os.path.join(STATE, "ready"), "w").close()
server.serve_forever()
