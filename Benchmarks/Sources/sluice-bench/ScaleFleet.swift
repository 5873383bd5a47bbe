import AsyncHTTPClient
import Foundation

/// N active rollouts in one `sluice serve`: a loopback Prometheus and a loopback Caddy admin API, N strategies
/// applied and N rollouts started through the HTTP API, every one holding its first stage for a day.
final class ScaleFleet: @unchecked Sendable {
    let rollouts: Int
    let interval: Int
    let prometheus: ScalePrometheus
    let caddy: ScaleCaddy
    let sluice: SluiceUnderTest
    /// How long applying the strategies and starting the rollouts took, in seconds.
    private(set) var setupSeconds = 0.0

    init(rollouts: Int, interval: Int, binary: String, directory: URL, http: HTTPClient) async throws {
        self.rollouts = rollouts
        self.interval = interval
        prometheus = try ScalePrometheus(threads: 1)
        caddy = try ScaleCaddy(threads: 1)
        sluice = try await SluiceUnderTest(binary: binary, directory: directory, http: http)
    }

    /// Applies the strategies, then starts one rollout of each, `concurrency` API calls at a time.
    func start(concurrency: Int) async throws {
        let began = Date()
        try await forEach(concurrency: concurrency) { index in
            let name = Self.name(index)
            let answer = try await self.sluice.request(
                .PUT, "/v1/strategies/scale/\(name)", body: self.strategy(index), contentType: "application/yaml")
            guard answer.status == 201 || answer.status == 200 else {
                throw BenchError("PUT strategy \(name): \(answer.status) \(answer.body.prefix(300))")
            }
        }
        try await forEach(concurrency: concurrency) { index in
            let name = Self.name(index)
            let answer = try await self.sluice.request(
                .POST, "/v1/rollouts", body: #"{"strategy":"scale/\#(name)","version":"v2"}"#)
            guard answer.status == 201 else {
                throw BenchError("start rollout of \(name): \(answer.status) \(answer.body.prefix(300))")
            }
        }
        setupSeconds = Date().timeIntervalSince(began)
    }

    /// Runs `body` for 0..<rollouts with at most `concurrency` calls in flight.
    private func forEach(concurrency: Int, _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            for _ in 0..<min(concurrency, rollouts) {
                let index = next
                next += 1
                group.addTask { try await body(index) }
            }
            while try await group.next() != nil {
                if next < rollouts {
                    let index = next
                    next += 1
                    group.addTask { try await body(index) }
                }
            }
        }
    }

    static func name(_ index: Int) -> String {
        let number = String(index)
        return "svc-" + String(repeating: "0", count: max(0, 5 - number.count)) + number
    }

    /// A Caddy `upstreams` strategy with two Prometheus checks that pass, sampled every `interval` seconds,
    /// whose first stage holds for 24 h (so every rollout stays Progressing for the whole benchmark).
    func strategy(_ index: Int) -> String {
        let name = Self.name(index)
        let stable = "10.1.\(index / 250).\(index % 250 + 1):8080"
        let canary = "10.2.\(index / 250).\(index % 250 + 1):8080"
        return """
            apiVersion: sluice.dev/v1
            kind: Strategy
            metadata:
              name: \(name)
              namespace: scale
            spec:
              target:
                upstreams:
                  stable: ["\(stable)"]
                  canary: ["\(canary)"]
              traffic:
                caddy:
                  adminURL: http://127.0.0.1:\(caddy.port)
                  handlerID: \(name)
              stages:
                - {name: canary, weight: 5, hold: 24h}
                - {name: full, weight: 100}
              analysis:
                interval: \(interval)s
                providers:
                  prom:
                    prometheus:
                      address: http://127.0.0.1:\(prometheus.port)
                      timeout: 5s
                checks:
                  - name: error-rate
                    query: sum(rate(http_requests_total{service="\(name)",code=~"5.."}[1m])) / sum(rate(http_requests_total{service="\(name)"}[1m]))
                    max: 0.05
                  - name: latency-p99
                    query: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="\(name)"}[1m])))
                    max: 0.5

            """
    }

    /// Waits until every rollout has been sampled at least `ticks` times (2 queries a tick), or `timeout`.
    func waitForTicks(_ ticks: Int, timeout: Double) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if prometheus.state.withLock({ $0.requests }) >= rollouts * 2 * ticks { return }
            try await Task.sleep(for: .milliseconds(250))  // polling the loopback Prometheus' counter
        }
        throw BenchError("the rollouts were not all sampled \(ticks) times within \(Int(timeout)) s")
    }

    /// Everything counted at one moment.
    func snapshot() async throws -> FleetSnapshot {
        let metrics = try await sluice.metrics()
        return FleetSnapshot(
            process: try ProcessSample.read(pid: sluice.pid),
            bench: try ProcessSample.read(pid: getpid()),
            prometheusRequests: prometheus.state.withLock { $0.requests },
            caddyRequests: caddy.state.withLock { $0.requests },
            storeBytes: sluice.storeBytes,
            lateness: histogramBuckets("sluice_tick_lateness_seconds", in: metrics),
            duration: histogramBuckets("sluice_reconcile_duration_seconds", in: metrics),
            rollbacks: counterSum("sluice_rollbacks_total", in: metrics),
            load: oneMinuteLoadAverage())
    }

    func stop() {
        sluice.stop()
        try? prometheus.server.shutdown()
        try? caddy.server.shutdown()
    }
}

/// The counters of a fleet at one moment.
struct FleetSnapshot {
    var process: ProcessSample
    var bench: ProcessSample
    var prometheusRequests: Int
    var caddyRequests: Int
    var storeBytes: Int64
    var lateness: [(bound: Double, count: Double)]
    var duration: [(bound: Double, count: Double)]
    var rollbacks: Double
    var load: Double
}
