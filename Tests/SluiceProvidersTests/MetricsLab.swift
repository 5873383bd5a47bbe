import Foundation
import SluiceCore
import SluiceHTTP
import SluiceProviders
import SluiceTestSupport

/// A real Prometheus scraping a test exporter every second, a `PrometheusProvider` on it, and real
/// requests through the exporter while a test watches a check's verdict change. One per test, so
/// tests stay independent when Swift Testing runs them in parallel.
final class MetricsLab: Sendable {
    let exporter: TestExporter
    /// The same app as `track="stable"`, without traffic, for the comparisons with stable; nil unless asked for.
    let stable: TestExporter?
    let prometheus: PrometheusServer
    let client: CurlClient
    let metrics = ProviderMetrics()
    let provider: PrometheusProvider

    private init(exporter: TestExporter, stable: TestExporter?, prometheus: PrometheusServer, client: CurlClient) throws {
        self.exporter = exporter
        self.stable = stable
        self.prometheus = prometheus
        self.client = client
        provider = try PrometheusProvider(
            name: "prom", config: PrometheusConfig(address: prometheus.address, timeout: .seconds(2)), client: client,
            metrics: metrics)
    }

    /// Starts the exporter (`latencyMs` added to every request, which also paces the traffic) and a
    /// Prometheus scraping it, and waits until the first sample is in: data, not mere readiness.
    /// With `stable`, a second exporter of the same app as `track="stable"` is scraped too.
    static func start(latencyMs: Double = 20, stable withStable: Bool = false) async throws -> MetricsLab {
        let exporter = try await TestExporter.start(app: "checkout", track: "canary")
        let prometheus: PrometheusServer
        var stable: TestExporter?
        do {
            if withStable { stable = try await TestExporter.start(app: "checkout", track: "stable") }
            prometheus = try await PrometheusServer.start(targets: [exporter.target] + (stable.map { [$0.target] } ?? []))
        } catch {
            exporter.stop()
            stable?.stop()
            throw error
        }
        let lab = try MetricsLab(exporter: exporter, stable: stable, prometheus: prometheus, client: try CurlClient())
        do {
            try await lab.control(latencyMs: latencyMs)
            let targets = Double(withStable ? 2 : 1)
            try await waitUntil("Prometheus' first scrape of the exporter", timeout: .seconds(20)) {
                try await lab.provider.sample(query: #"sum(up{job="exporter"})"#) == targets
            }
        } catch {
            lab.stop()
            throw SupportError("\(error)\nprometheus log:\n\(prometheus.logTail())")
        }
        return lab
    }

    func stop() {
        prometheus.stop()
        exporter.stop()
        stable?.stop()
    }

    /// Changes the exporter's behaviour from the next request on (`POST /control`).
    func control(errorRate: Double? = nil, latencyMs: Double? = nil) async throws {
        var fields: [String] = []
        if let errorRate { fields.append(#""error_rate": \#(errorRate)"#) }
        if let latencyMs { fields.append(#""latency_ms": \#(latencyMs)"#) }
        let request = HTTPRequest(
            method: "POST", url: exporter.url + "/control",
            headers: [(name: "Content-Type", value: "application/json")],
            body: Data("{\(fields.joined(separator: ", "))}".utf8), timeout: .seconds(5))
        let response = try await client.execute(request)
        guard response.status == 200 else {
            throw SupportError(
                "exporter /control answered \(response.status): \(String(decoding: response.body, as: UTF8.self))")
        }
    }

    /// Runs `body` while `concurrency` loops send requests through the exporter (at most
    /// `maxRequests` in all; the exporter's latency paces them); the traffic stops when `body` returns.
    func withTraffic<T: Sendable>(
        concurrency: Int = 2, maxRequests: Int = 1500, _ body: @Sendable () async throws -> T
    ) async throws -> T {
        let client = self.client
        let url = exporter.url + "/"
        return try await withThrowingTaskGroup(of: T?.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    for _ in 0..<(maxRequests / concurrency) where !Task.isCancelled {
                        _ = try? await client.execute(HTTPRequest(url: url, timeout: .seconds(5), retry: .none))
                    }
                    return nil
                }
            }
            let result = try await body()
            group.cancelAll()
            return result
        }
    }

    /// Queries `check` until its result satisfies `condition`; fails with the last result and
    /// Prometheus' log when it does not within `timeout`.
    func waitForResult(
        _ check: Check, query: String, timeout: Duration = .seconds(15), _ what: String,
        _ condition: @Sendable (CheckResult) -> Bool
    ) async throws -> CheckResult {
        let runner = CheckRunner(providers: [check.provider: provider])
        let last = LastResult()
        do {
            try await waitUntil(what, timeout: timeout, interval: .milliseconds(250)) {
                let result = await runner.run(check, query: query)
                last.set(result)
                return condition(result)
            }
        } catch {
            throw SupportError("\(error); last result: \(String(describing: last.get()))\n\(await diagnostics())")
        }
        guard let result = last.get() else { throw SupportError("\(what): never queried") }
        return result
    }
}

extension MetricsLab {
    /// What Prometheus knows about the exporter, for failure messages.
    func diagnostics() async -> String {
        var lines: [String] = []
        for query in [
            #"up{job="exporter"}"#, #"scrape_duration_seconds{job="exporter"}"#,
            #"sum(http_requests_total{job="exporter"})"#, #"sum(rate(http_requests_total{job="exporter"}[5s]))"#,
        ] {
            let answer: String
            do { answer = "\(try await provider.read(query: query))" } catch { answer = "\(error)" }
            lines.append("\(query) = \(answer)")
        }
        return lines.joined(separator: "\n") + "\nexporter log:\n\(exporter.logTail())"
    }
}

/// The last result a polling loop saw, for its failure message.
private final class LastResult: @unchecked Sendable {
    private let lock = NSLock()
    private var result: CheckResult?
    func set(_ value: CheckResult) { lock.withLock { result = value } }
    func get() -> CheckResult? { lock.withLock { result } }
}
