import Foundation
import SluiceAPI
import SluiceController
import SluiceCore
import SluiceHTTP
import SluiceTestSupport
import Testing

/// OTLP span export (docs/operations.md "Exporting spans") with the real `sluice serve`, a real Caddy behind the
/// recording admin proxy, and a receiver that parses every export strictly as an `ExportTraceServiceRequest`; and
/// `sluice events --trace-id`, which finds a trace's events.
struct SpanExportTests {
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let callerSpan = "00f067aa0ba902b7"
    static let traceparent = "00-\(traceID)-\(callerSpan)-01"

    @Test
    func aRollbackIsOneExportedTraceFromTheRequestThroughTheTickToTheRoutersPatch() async throws {
        let receiver = try await OTLPReceiver()
        defer { receiver.stop() }
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        let proxy = try await AdminProxy(upstream: caddy.adminURL)
        defer { proxy.stop() }
        let server = try await ServeProcess.start(config: "otlp: {endpoint: \"\(receiver.endpoint)\", serviceName: sluice-test}\n")
        defer { server.stop() }
        let path = server.directory + "/search.yaml"
        try ServeProcess.strategy(
            weight: 10, adminURL: proxy.url, stable: caddy.backendDials[0], canary: caddy.backendDials[1],
            metricsURL: "http://\(caddy.backendDials[2])/budget"
        ).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try await runSluice(["apply", "-f", path] + server.tokenArgs(.release)).status == 0)
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci)).status == 0)
        try await Self.waitForCanary(server)

        let rollback = try await run(
            "/usr/bin/env",
            ["TRACEPARENT=\(Self.traceparent)", try sluiceBinary(), "rollback", "web/search", "--reason", "INC-7", "--wait",
             "20s"] + server.tokenArgs(.oncall))
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")

        // The receiver gets the request's span, the effects and tick spans and the router's PATCH, in one trace.
        var spans: [OTLPReceiver.ReceivedSpan] = []
        try await waitUntil("the rollback's spans at the receiver", timeout: .seconds(30)) {
            spans = try receiver.spans().filter { $0.traceId == Self.traceID }
            return spans.contains { $0.kind == 3 && $0.name == "PATCH" } && spans.contains { $0.name == "tick" }
        }
        let errors = try receiver.errors()
        #expect(errors.isEmpty, "every body parsed strictly: \(errors)")
        let request = try #require(spans.first { $0.kind == 2 && $0.name.hasSuffix("/rollback") }, "\(spans.map(\.name))")
        #expect(request.parentSpanId == Self.callerSpan, "the request's span is the caller's child")
        #expect(request.attributes["http.response.status_code"] == .int(200))
        guard case .string(let requestID)? = request.attributes["request.id"] else {
            Issue.record("no request.id on \(request)")
            return
        }
        let effects = try #require(spans.first { $0.name == "effects" })
        #expect(effects.kind == 1 && effects.parentSpanId == request.spanId, "the effects continue the command's span")
        let patch = try #require(spans.first { $0.kind == 3 && $0.name == "PATCH" && $0.parentSpanId == effects.spanId })
        #expect(patch.attributes["server.port"] == .int(proxy.port))
        #expect(patch.attributes["http.response.status_code"] == .int(200))
        #expect(spans.contains { $0.name == "tick" && $0.attributes["rollout.id"] != nil })
        for span in spans {
            #expect(span.service == "sluice-test" && span.scope == "sluice", "\(span)")
        }
        // The router received that PATCH with the client span's own traceparent.
        let patched = try proxy.requests().filter { $0.method == "PATCH" }.compactMap { $0.headers["traceparent"] }
        #expect(patched.contains("00-\(Self.traceID)-\(patch.spanId)-01"), "\(patched)")
        print("--- spans of trace \(Self.traceID) at the receiver")
        for span in spans {
            print("\(span.name) kind=\(span.kind) span=\(span.spanId) parent=\(span.parentSpanId ?? "-")")
        }

        // The trace's events, by its id: the rollback's, carried out in that trace; the start's are in another one.
        let traced = try await runSluice(["events", "--trace-id", Self.traceID, "-o", "json"] + server.tokenArgs(.viewer))
        #expect(traced.status == 0, "\(traced.stderr)")
        let payloads = try traced.stdout.split(separator: "\n").map {
            try JSONDecoder().decode(EventPayload.self, from: Data($0.utf8))
        }
        #expect(payloads.contains { $0.type == "RollbackStarted" && $0.requestID == requestID }, "\(payloads)")
        #expect(payloads.contains { $0.type == "RolledBack" })
        #expect(!payloads.contains { $0.type == "RolloutStarted" }, "the start was in another trace")
        #expect(payloads.allSatisfy { $0.traceparent?.contains(Self.traceID) == true })
        let all = try await runSluice(["events", "web/search", "-o", "json"] + server.tokenArgs(.viewer))
        #expect(all.stdout.split(separator: "\n").count > payloads.count, "the filter left events out")
        // The text shows the request id of an event a request caused.
        let text = try await runSluice(["events", "web/search", "--trace-id", Self.traceID.uppercased()] + server.tokenArgs(.viewer))
        let started = try #require(text.stdout.split(separator: "\n").first { $0.contains("RollbackStarted") })
        #expect(started.hasSuffix("  request=\(requestID)"), "\(started)")
        let api = try CurlClient()
        let bad = try await api.execute(HTTPRequest(
            url: server.url + "/v1/events?trace_id=xyz",
            headers: [("Authorization", "Bearer \(ServeProcess.token(.viewer))")]))
        #expect(bad.status == 400 && String(decoding: bad.body, as: UTF8.self).contains("trace_id"))

        // /metrics counts what was exported, and nothing dropped.
        let metrics = try await Self.metrics(server)
        #expect((Self.sample(metrics, "sluice_trace_spans_exported_total") ?? 0) >= Double(spans.count), "\(metrics)")
        #expect(Self.sample(metrics, #"sluice_trace_spans_dropped_total{reason="export_failed"}"#) == 0)
        #expect(Self.sample(metrics, #"sluice_trace_spans_dropped_total{reason="queue_full"}"#) == 0)
    }

    @Test
    func withTheCollectorDownARollbackStillCompletesAndTheDroppedSpansAreCounted() async throws {
        let port = try freePort()  // nothing listens here until the receiver starts below
        let (caddy, server) = try await Self.rolloutBehindCaddy(config: "otlp: {endpoint: \"http://127.0.0.1:\(port)\"}\n")
        defer { caddy.stop() }
        defer { server.stop() }
        let started = ContinuousClock.now
        let rollback = try await run(
            "/usr/bin/env",
            ["TRACEPARENT=\(Self.traceparent)", try sluiceBinary(), "rollback", "web/search", "--reason", "INC-8", "--wait",
             "20s"] + server.tokenArgs(.oncall))
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        print("rollback confirmed with the collector down in \(ContinuousClock.now - started)")
        try await waitUntil("dropped spans on /metrics", timeout: .seconds(30)) {
            (Self.sample(try await Self.metrics(server), #"sluice_trace_spans_dropped_total{reason="export_failed"}"#) ?? 0) > 0
        }
        let log = server.process.logTail(20_000)
        #expect(log.contains("span export failing"), "logged once when it starts failing")

        // The collector comes up: the spans made from then on arrive.
        let receiver = try await OTLPReceiver(port: port)
        defer { receiver.stop() }
        try await waitUntil("spans at the receiver once it is up", timeout: .seconds(30)) {
            _ = try await runSluice(["status"] + server.tokenArgs(.viewer))  // a request: a span
            return try !receiver.spans().isEmpty
        }
        try await waitUntil("exported spans on /metrics", timeout: .seconds(10)) {
            (Self.sample(try await Self.metrics(server), "sluice_trace_spans_exported_total") ?? 0) > 0
        }
        #expect(server.process.logTail(20_000).contains("span export working again"))
    }

    @Test
    func theCollectorsCertificateIsVerified() async throws {
        let tls = try TLSFixtures()
        let receiver = try await OTLPReceiver(tls: tls)
        defer { receiver.stop() }
        // Against the system's roots, the test CA's certificate is refused: nothing arrives, the spans are dropped.
        let (caddy, untrusting) = try await Self.rolloutBehindCaddy(config: "otlp: {endpoint: \"\(receiver.endpoint)\"}\n")
        defer { caddy.stop() }
        defer { untrusting.stop() }
        try await waitUntil("dropped spans on /metrics", timeout: .seconds(30)) {
            (Self.sample(try await Self.metrics(untrusting), #"sluice_trace_spans_dropped_total{reason="export_failed"}"#) ?? 0) > 0
        }
        #expect(try receiver.spans().isEmpty)
        untrusting.stop()
        // With `ca`, the same receiver is trusted.
        let trusting = try await ServeProcess.start(
            config: "otlp: {endpoint: \"\(receiver.endpoint)\", ca: \"\(tls.caCertificate)\"}\n")
        defer { trusting.stop() }
        try await trusting.applyBehind(caddy, hold: "1m")
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + trusting.tokenArgs(.ci)).status == 0)
        try await waitUntil("spans at the receiver", timeout: .seconds(30)) { try !receiver.spans().isEmpty }
    }

    @Test(arguments: [
        ("otlp: {endpoint: \"http://collector:4318/\"}\n", "http://collector:4318/v1/traces"),
        ("otlp: {endpoint: \"https://c.example:4318/otlp\", serviceName: sluice-eu}\n", "https://c.example:4318/otlp/v1/traces"),
        ("otlp: {endpoint: \"ftp://c:21\"}\n", "`otlp.endpoint` must be an http or https URL"),
        ("otlp: {endpoint: \"http://user:pw@c:4318\"}\n", "`otlp.endpoint` must hold no user"),
        ("otlp: {endpoint: \"http://c:4318/v1/traces\"}\n", "Sluice adds /v1/traces"),
        ("otlp: {serviceName: x}\n", "`otlp.endpoint` (the collector's OTLP/HTTP URL"),
        ("otlp: {endpoint: \"http://c:4318\", ca: nosuch.pem}\n", "`otlp.ca`: cannot read"),
        ("otlp: {endpoint: \"http://c:4318\", endpont: x}\n", "unknown otlp setting `endpont`; did you mean `endpoint`?"),
        ("traceContext: false\notlp: {endpoint: \"http://c:4318\"}\n", "`traceContext: false` turns off"),
    ])
    func theOTLPSettingIsCheckedWhereItIsWritten(_ text: String, _ expected: String) throws {
        let directory = try makeTemporaryDirectory("sluice-otlp-config")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "tokens: []\n".write(toFile: directory + "/tokens.yaml", atomically: true, encoding: .utf8)
        let source = "listen: 127.0.0.1:7700\ntokensFile: tokens.yaml\nstatePath: s.db\n" + text
        do {
            let config = try ServerConfig.parse(source, file: "sluice.yaml", baseDirectory: directory)
            #expect(config.otlp?.tracesURL == expected)
            #expect(config.otlp?.serviceName == (text.contains("sluice-eu") ? "sluice-eu" : "sluice"))
        } catch let error as ConfigError {
            #expect(error.description.hasPrefix("sluice.yaml:4:") || error.description.hasPrefix("sluice.yaml:5:"))
            #expect(error.description.contains(expected), "\(error)")
            #expect(!expected.hasPrefix("http"), "\(error)")
        }
    }

    @Test
    func withoutOTLPNothingIsExportedAndMetricsHaveNoExportSeries() async throws {
        let server = try await ServeProcess.start()
        defer { server.stop() }
        #expect(!(try await Self.metrics(server)).contains("sluice_trace_spans"))
        let flag = try await runSluice(["serve", "--config", server.directory + "/sluice.yaml", "--otlp-endpoint", "nope"])
        #expect(flag.status == 64 && flag.stderr.contains("--otlp-endpoint: the URL must be an http or https URL"), "\(flag.stderr)")
    }

    // MARK: Support

    /// Caddy with a passing check, `sluice serve` with `config`, web/search applied and a rollout of v2 at 10 %.
    static func rolloutBehindCaddy(config: String) async throws -> (CaddyServer, ServeProcess) {
        let (caddy, server) = try await ServeProcess.rolloutBehindCaddy(version: "v2", config: config)
        do {
            try await waitForCanary(server)
            return (caddy, server)
        } catch {
            server.stop()
            caddy.stop()
            throw error
        }
    }

    /// Waits until the router confirms the canary's 10 %.
    static func waitForCanary(_ server: ServeProcess) async throws {
        try await waitUntil("the router to confirm 10%", timeout: .seconds(30)) {
            let status = try await runSluice(["status", "web/search", "-o", "json"] + server.tokenArgs(.viewer))
            let rollout = try JSONDecoder().decode(RolloutList.self, from: Data(status.stdout.utf8)).rollouts.first
            return rollout?.router?.weight == 10 && rollout?.router?.confirmed == true
        }
    }

    static func metrics(_ server: ServeProcess) async throws -> String {
        let response = try await CurlClient().execute(HTTPRequest(url: server.url + "/metrics"))
        return String(decoding: response.body, as: UTF8.self)
    }

    /// The value of the sample `series` (name and labels as written), nil when absent.
    static func sample(_ text: String, _ series: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
    }
}
