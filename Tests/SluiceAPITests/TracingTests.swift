import Foundation
import Logging
import SluiceAPI
import SluiceController
import SluiceCore
import SluiceHTTP
import SluiceTestSupport
import Testing
import Tracing

/// Structured logs, request ids and trace context (docs/operations.md "Logs" and "Traces", docs/api.md "Request ids
/// and trace context"), with the real `sluice serve`, a real Caddy behind the recording admin proxy and a real
/// Prometheus: one rollout promoted, one rolled back by `sluice rollback` carrying the caller's `traceparent`.
struct TracingTests {
    /// The caller's trace: what a CI job's `TRACEPARENT` would hold.
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let traceparent = "00-\(traceID)-00f067aa0ba902b7-01"

    @Test
    func aDemoRunLogsJSONLinesAndOneTraceGoesFromTheCLIThroughTheEventToTheRoutersPatch() async throws {
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        let prometheus = try await PrometheusServer.start(targets: [])
        defer { prometheus.stop() }
        let proxy = try await AdminProxy(upstream: caddy.adminURL)
        defer { proxy.stop() }
        let server = try await ServeProcess.start(config: "logFormat: json\n")
        defer { server.stop() }
        let path = server.directory + "/search.yaml"
        try ServeProcess.strategy(
            weight: 10, adminURL: proxy.url, stable: caddy.backendDials[0], canary: caddy.backendDials[1], hold: "1s",
            // A real Prometheus asked for a constant that passes.
            check: (#"{prometheus: {address: "\#(prometheus.address)"}}"#, "{name: budget, query: vector(0.9), min: 0.5}")
        ).write(toFile: path, atomically: true, encoding: .utf8)
        let applied = try await runSluice(["apply", "-f", path] + server.tokenArgs(.release))
        #expect(applied.status == 0, "\(applied.stderr)")

        // A rollout that is paused by a request with its own X-Request-Id, resumed, and promoted.
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci)).status == 0)
        let first = try await waitForWeight(10, server: server)
        let paused = try await run(
            "/usr/bin/curl",
            ["-s", "-i", "-X", "POST", "-H", "Authorization: Bearer \(ServeProcess.token(.oncall))", "-H",
             "X-Request-Id: ci-run-42.pause", server.url + "/v1/rollouts/\(first)/pause"])
        #expect(paused.stdout.contains("HTTP/1.1 200"), "\(paused.stdout)")
        #expect(paused.stdout.lowercased().contains("x-request-id: ci-run-42.pause\r\n"), "echoed: \(paused.stdout)")
        #expect(try await runSluice(["resume", "web/search"] + server.tokenArgs(.oncall)).status == 0)
        try await waitUntil("v2 to be promoted", timeout: .seconds(60)) {
            try await Self.phase(server) == "Succeeded"
        }

        // A rollout rolled back by the real CLI inside the caller's trace.
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v3"] + server.tokenArgs(.ci)).status == 0)
        let second = try await waitForWeight(10, server: server)
        let before = try proxy.requests().count
        let rollback = try await run(
            "/usr/bin/env",
            ["TRACEPARENT=\(Self.traceparent)", try sluiceBinary(), "rollback", "web/search", "--reason", "INC-7", "--wait",
             "20s"] + server.tokenArgs(.oncall))
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        try await waitUntil("v3 to be rolled back", timeout: .seconds(30)) { try await Self.phase(server) == "RolledBack" }

        // The events: the pause has the client's request id; the rollback and what carried it out have the trace.
        let events = try await runSluice(["events", "web/search", "-o", "json"] + server.tokenArgs(.viewer))
        let payloads = try events.stdout.split(separator: "\n").map {
            try JSONDecoder().decode(EventPayload.self, from: Data($0.utf8))
        }
        let pause = try #require(payloads.first { $0.rollout == first && $0.type == "Paused" })
        #expect(pause.requestID == "ci-run-42.pause")
        let started = try #require(payloads.first { $0.rollout == second && $0.type == "RollbackStarted" })
        #expect(started.traceparent?.split(separator: "-").dropFirst().first == Substring(Self.traceID), "\(started)")
        #expect(started.traceparent != Self.traceparent, "the request's own span, a child of the caller's")
        let requestID = try #require(started.requestID)
        #expect(RequestID.accepts(requestID) && requestID.count == 32, "made by the server: \(requestID)")
        let rolledBack = try #require(payloads.first { $0.rollout == second && $0.type == "RolledBack" })
        #expect(rolledBack.traceparent?.contains(Self.traceID) == true, "the tick that confirmed it: \(rolledBack)")
        #expect(rolledBack.requestID == nil, "a tick is no request")
        print("--- RollbackStarted event\n\(String(decoding: try started.json(), as: UTF8.self))")

        // The router's PATCH that set the canary's weight to 0 carried the same trace.
        let writes = try proxy.requests().dropFirst(before).filter { $0.method == "PATCH" }
        #expect(!writes.isEmpty, "the rollback wrote to Caddy through the proxy")
        for write in writes {
            let header = write.headers["traceparent"] ?? ""
            #expect(header.split(separator: "-").dropFirst().first == Substring(Self.traceID), "\(write)")
        }
        print("--- the router's PATCH at the proxy\n\(writes.map { "\($0.method) \($0.path) traceparent: \($0.headers["traceparent"] ?? "-")" })")

        // Every line the server wrote is one JSON object with the required keys; request and trace ids are in them.
        server.process.stop()
        let log = String(decoding: FileManager.default.contents(atPath: server.process.logPath) ?? Data(), as: UTF8.self)
        let lines = log.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count > 10, "\(log)")
        var objects: [[String: Any]] = []
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            guard let object else {
                Issue.record("not a JSON object: \(line)")
                continue
            }
            for key in ["time", "level", "message", "logger"] {
                #expect(object[key] is String, "\(key) in \(line)")
            }
            let time = object["time"] as? String ?? ""
            #expect(time.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(time)")
            objects.append(object)
        }
        let rollingBack = objects.first { $0["message"] as? String == "rollout rolling back" && $0["rollout.id"] as? String == second }
        #expect(rollingBack?["trace.id"] as? String == Self.traceID, "\(String(describing: rollingBack))")
        #expect(rollingBack?["request.id"] as? String == requestID, "the event's request id is in the log line")
        #expect(rollingBack?["strategy.name"] as? String == "web/search")
        for role in Role.allCases { #expect(!log.contains(ServeProcess.token(role)), "no token in the log") }
        let shown = lines.first { $0.contains("rollout rolling back") } ?? ""
        print("--- a JSON log line\n\(shown)")
    }

    @Test
    func withTraceContextOffEventsKeepTheirRequestIDButCarryNoTrace() async throws {
        let server = try await ServeProcess.start(config: "traceContext: false\n")
        defer { server.stop() }
        let path = server.directory + "/search.yaml"
        try ServeProcess.strategy(weight: 10).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try await runSluice(["apply", "-f", path] + server.tokenArgs(.release)).status == 0)
        let started = try await run(
            "/usr/bin/env",
            ["TRACEPARENT=\(Self.traceparent)", try sluiceBinary(), "rollout", "start", "web/search", "--version", "v2"]
                + server.tokenArgs(.ci))
        #expect(started.status == 0, "\(started.stderr)")
        let events = try await runSluice(["events", "web/search", "-o", "json"] + server.tokenArgs(.viewer))
        let first = try #require(events.stdout.split(separator: "\n").first)
        let payload = try JSONDecoder().decode(EventPayload.self, from: Data(first.utf8))
        #expect(payload.type == "RolloutStarted" && payload.requestID.map(RequestID.accepts) == true, "\(payload)")
        #expect(payload.traceparent == nil, "\(payload)")
    }

    /// `sluice events --trace-id` keeps the events one trace recorded (and `GET /v1/events?trace_id=`); the text
    /// output ends an event that a request caused with `request=ID`.
    @Test
    func eventsAreFoundByTraceIDAndTheTextShowsTheRequestID() async throws {
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let path = server.directory + "/search.yaml"
        try ServeProcess.strategy(weight: 10).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try await runSluice(["apply", "-f", path] + server.tokenArgs(.release)).status == 0)
        let other = "0af7651916cd43dd8448eb211c80319c"
        for (trace, arguments) in [
            (Self.traceID, ["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci)),
            (other, ["pause", "web/search"] + server.tokenArgs(.oncall)),
        ] {
            let done = try await run(
                "/usr/bin/env", ["TRACEPARENT=00-\(trace)-00f067aa0ba902b7-01", try sluiceBinary()] + arguments)
            #expect(done.status == 0, "\(arguments): \(done.stderr)")
        }
        func listed(_ arguments: [String]) async throws -> [EventPayload] {
            let result = try await runSluice(["events", "-o", "json"] + arguments + server.tokenArgs(.viewer))
            #expect(result.status == 0, "\(result.stderr)")
            return try result.stdout.split(separator: "\n").map {
                try JSONDecoder().decode(EventPayload.self, from: Data($0.utf8))
            }
        }
        let all = try await listed([])
        let first = try await listed(["--trace-id", Self.traceID])
        #expect(first.contains { $0.type == "RolloutStarted" } && !first.contains { $0.type == "Paused" }, "\(first)")
        #expect(first.allSatisfy { $0.traceparent?.hasPrefix("00-\(Self.traceID)-") == true }, "\(first)")
        // Upper case is accepted, as some tools print trace ids; with a strategy it is both filters.
        let second = try await listed(["web/search", "--trace-id", other.uppercased()])
        #expect(second.map(\.type) == ["Paused"], "\(second)")
        #expect(all.count >= first.count + second.count && all.count > second.count, "\(all.map(\.type))")

        let text = try await runSluice(["events", "web/search"] + server.tokenArgs(.viewer))
        let paused = try #require(text.stdout.split(separator: "\n").first { $0.contains("Paused") }, "\(text.stdout)")
        let requestID = try #require(second.first?.requestID)
        #expect(paused.hasSuffix("  request=\(requestID)"), "\(paused)")

        let bad = try await runSluice(["events", "--trace-id", "xyz"] + server.tokenArgs(.viewer))
        #expect(bad.status == 64 && bad.stderr.contains("--trace-id must be a W3C trace id"), "\(bad.stderr)")
        let api = try await run(
            "/usr/bin/curl",
            ["-s", "-w", "\n%{http_code}", "-H", "Authorization: Bearer \(ServeProcess.token(.viewer))",
             server.url + "/v1/events?trace_id=" + String(repeating: "0", count: 32)])
        #expect(api.stdout.hasSuffix("\n400") && api.stdout.contains("trace_id"), "\(api.stdout)")
    }

    /// The id of the active rollout once the router confirms `weight`.
    private func waitForWeight(_ weight: Int, server: ServeProcess) async throws -> String {
        var id = ""
        try await waitUntil("the router to confirm \(weight)%", timeout: .seconds(30)) {
            let json = try await runSluice(["status", "web/search", "-o", "json"] + server.tokenArgs(.viewer))
            let rollout = try JSONDecoder().decode(RolloutList.self, from: Data(json.stdout.utf8)).rollouts.first
            id = rollout?.id ?? ""
            return rollout?.router?.weight == weight && rollout?.router?.confirmed == true
        }
        return id
    }

    private static func phase(_ server: ServeProcess) async throws -> String? {
        let json = try await runSluice(["status", "web/search", "-o", "json"] + server.tokenArgs(.viewer))
        return try JSONDecoder().decode(RolloutList.self, from: Data(json.stdout.utf8)).rollouts.first?.phase
    }

    // MARK: The JSON lines

    @Test(arguments: [
        "plain", "quote \" and backslash \\", "new\nline\r\ttab", "nul \u{0} bell \u{7} del \u{7F} c1 \u{85}",
        "é ü 日本 🚀", "line separator \u{2028} paragraph \u{2029}", "",
    ])
    func everyStringRoundTripsAndNoControlByteReachesTheLine(_ text: String) throws {
        let bytes = JSONLogHandler.line(
            time: Date(timeIntervalSince1970: 1_796_000_000.5), level: .warning, message: text, label: "sluice",
            metadata: ["rollout.id": .string(text), "list": .array([.string(text)]), "map": .dictionary(["k": .string(text)])])
        #expect(bytes.last == 0x0A)
        #expect(bytes.dropLast().allSatisfy { $0 >= 0x20 }, "one line, no raw control byte")
        let line = String(decoding: bytes.dropLast(), as: UTF8.self)
        #expect(!line.contains("\u{2028}") && !line.contains("\u{85}"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(object["message"] as? String == text)
        #expect(object["rollout.id"] as? String == text)
        #expect((object["list"] as? [String]) == [text])
        #expect((object["map"] as? [String: String]) == ["k": text])
        #expect(object["level"] as? String == "warning" && object["logger"] as? String == "sluice")
        #expect(object["time"] as? String == "2026-11-30T00:53:20.500Z")
    }

    @Test
    func metadataCannotOverwriteTheFixedKeys() throws {
        let bytes = JSONLogHandler.line(
            time: Date(timeIntervalSince1970: 0), level: .info, message: "m", label: "sluice",
            metadata: ["message": "x", "level": "y", "time": "z", "logger": "w"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(object["message"] as? String == "m" && object["metadata.message"] as? String == "x")
        #expect(object["level"] as? String == "info" && object["metadata.level"] as? String == "y")
        #expect(object["time"] as? String == "1970-01-01T00:00:00.000Z" && object["metadata.time"] as? String == "z")
        #expect(object["logger"] as? String == "sluice" && object["metadata.logger"] as? String == "w")
    }

    @Test
    func theHandlerAddsTheTasksRequestAndTraceIDs() async throws {
        let lines = Locked<[[UInt8]]>([])
        let handler = JSONLogHandler(
            label: "sluice", metadataProvider: LogContext.metadataProvider, output: .init { bytes in lines.withLock { $0.append(bytes) } })
        let logger = Logger(label: "sluice") { _ in handler }
        let tracer = W3CTracer()
        var context = ServiceContext.topLevel
        context.requestID = "abc-1"
        tracer.extract([TraceHeader.traceparent: Self.traceparent], into: &context, using: DictionaryCarrier())
        tracer.withSpan("test", context: context) { _ in logger.info("inside", metadata: ["rollout.id": "r-1"]) }
        logger.info("outside")
        let objects = try lines.withLock { $0 }.map { try #require(try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any]) }
        #expect(objects.count == 2)
        #expect(objects[0]["request.id"] as? String == "abc-1" && objects[0]["trace.id"] as? String == Self.traceID)
        #expect((objects[0]["span.id"] as? String).map { $0.count == 16 && $0 != "00f067aa0ba902b7" } == true, "a child span")
        #expect(objects[0]["rollout.id"] as? String == "r-1")
        #expect(objects[1]["request.id"] == nil && objects[1]["trace.id"] == nil)
    }

    // MARK: Request ids, trace context, the setting

    @Test(arguments: [
        ("ci-run-42", true), ("550e8400-e29b-41d4-a716-446655440000", true), ("a:b.c_d", true),
        (String(repeating: "x", count: 128), true), (String(repeating: "x", count: 129), false), ("", false),
        ("has space", false), ("quote\"", false), ("new\nline", false), ("é", false), ("a/b", false),
    ])
    func requestIDsAreAcceptedOnlyWhenShortAndPlain(_ id: String, _ accepted: Bool) {
        #expect(RequestID.accepts(id) == accepted)
    }

    @Test
    func madeRequestIDsAreUniqueAndAccepted() {
        let ids = (0..<100).map { _ in RequestID.make() }
        #expect(Set(ids).count == 100)
        #expect(ids.allSatisfy { RequestID.accepts($0) && $0.count == 32 })
    }

    @Test
    func theTracerContinuesAValidTraceparentAndStartsANewTraceForAMalformedOne() {
        let tracer = W3CTracer()
        let continued = tracer.context(continuing: Self.traceparent)
        #expect(continued.traceContext?.traceID.description == Self.traceID)
        for bad in ["", "00-\(Self.traceID)", "01-\(Self.traceID)-00f067aa0ba902b7-01", "00-" + String(repeating: "0", count: 32) + "-00f067aa0ba902b7-01"] {
            #expect(tracer.context(continuing: bad).traceContext == nil, "\(bad)")
        }
        var outgoing: [(name: String, value: String)] = [("traceparent", "stale")]
        var context = ServiceContext.topLevel
        tracer.extract(
            ["traceparent": Self.traceparent, "tracestate": "vendor=v1"], into: &context, using: DictionaryCarrier())
        tracer.withSpan("child", context: context) { span in
            tracer.inject(span.context, into: &outgoing, using: HeaderFieldsInjector())
        }
        #expect(outgoing.filter { $0.name == "traceparent" }.count == 1, "replaced, not added twice")
        let sent = outgoing.first { $0.name == "traceparent" }?.value ?? ""
        #expect(sent.hasPrefix("00-\(Self.traceID)-") && sent.hasSuffix("-01") && sent != Self.traceparent, "\(sent)")
        #expect(outgoing.first { $0.name == "tracestate" }?.value == "vendor=v1")
    }

    @Test(arguments: [
        ("logFormat: json\n", LogFormat.json, true), ("logFormat: text\n", .text, true), ("", nil, true),
        ("traceContext: false\n", nil, false), ("traceContext: true\n", nil, true),
    ])
    func theConfigSetsTheLogFormatAndTraceContext(_ line: String, _ format: LogFormat?, _ traceContext: Bool) throws {
        let dir = try makeTemporaryDirectory("sluice-logformat")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "tokens: []\n".write(toFile: dir + "/tokens.yaml", atomically: true, encoding: .utf8)
        let config = try ServerConfig.parse("tokensFile: tokens.yaml\n" + line, file: "sluice.yaml", baseDirectory: dir)
        #expect(config.logFormat == format && config.traceContext == traceContext)
    }

    @Test
    func aWrongLogFormatSaysWhereAndWhatIsAllowed() throws {
        let dir = try makeTemporaryDirectory("sluice-logformat")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "tokens: []\n".write(toFile: dir + "/tokens.yaml", atomically: true, encoding: .utf8)
        let error = #expect(throws: ConfigError.self) {
            try ServerConfig.parse("tokensFile: tokens.yaml\nlogFormat: yaml\n", file: "sluice.yaml", baseDirectory: dir)
        }
        #expect(error?.description.hasPrefix("sluice.yaml:2:") == true, "\(String(describing: error))")
        #expect(error?.message.contains("text or json") == true)
        let traceError = #expect(throws: ConfigError.self) {
            try ServerConfig.parse("tokensFile: tokens.yaml\ntraceContext: off\n", file: "sluice.yaml", baseDirectory: dir)
        }
        #expect(traceError?.description.hasPrefix("sluice.yaml:2:") == true && traceError?.message.contains("true or false") == true)
        #expect(LogFormat.default(stderrIsTerminal: true) == .text && LogFormat.default(stderrIsTerminal: false) == .json)
    }
}
