import AsyncHTTPClient
import Foundation
import SluiceTestSupport

/// Where a fleet keeps its state: one `sluice serve` on a SQLite file, or several replicas on one PostgreSQL.
enum ScaleBackend: String, CaseIterable {
    case sqlite
    case postgres
}

/// N active rollouts in `sluice serve` (one on SQLite, or several replicas on one PostgreSQL): a loopback
/// Prometheus and a loopback Caddy admin API shared by all, N strategies applied and N rollouts started through
/// the HTTP API, every one holding its first stage for a day.
final class ScaleFleet: @unchecked Sendable {
    let rollouts: Int
    let interval: Int
    let prometheus: ScalePrometheus
    let caddy: ScaleCaddy
    /// The replicas; one on SQLite.
    let servers: [SluiceUnderTest]
    /// The PostgreSQL cluster (started by the fleet, as the tests start theirs) and the database, on PostgreSQL.
    let postgres: (cluster: PostgresCluster, database: String)?
    /// The run's directory (each replica's config, log and, on SQLite, store; PostgreSQL's log at the end).
    let directory: URL
    /// How long applying the strategies and starting the rollouts took, in seconds.
    private(set) var setupSeconds = 0.0

    /// The first replica (the only one on SQLite).
    var sluice: SluiceUnderTest { servers[0] }

    init(
        rollouts: Int, interval: Int, binary: String, directory: URL, http: HTTPClient, backend: ScaleBackend,
        replicas: Int
    ) async throws {
        self.rollouts = rollouts
        self.interval = interval
        self.directory = directory
        prometheus = try ScalePrometheus(threads: 1)
        caddy = try ScaleCaddy(threads: 1)
        switch backend {
        case .sqlite:
            postgres = nil
            servers = [try await SluiceUnderTest(binary: binary, directory: directory, http: http)]
        case .postgres:
            let cluster = try await PostgresCluster.start()
            var started: [SluiceUnderTest] = []
            do {
                let database = try await cluster.createDatabase()
                let store = "database: \(cluster.url(database: database))\ndatabasePasswordFile: \(cluster.passwordFile)\n"
                for replica in 0..<replicas {
                    started.append(try await SluiceUnderTest(
                        binary: binary, directory: directory.appendingPathComponent("replica-\(replica)"), http: http,
                        store: store))
                }
                postgres = (cluster, database)
                servers = started
            } catch {
                for server in started { server.stop() }
                cluster.stop()
                throw error
            }
        }
    }

    /// On PostgreSQL, waits until the replicas share the 64 shards as the leases settle (each holds at most
    /// ceil(64 / replicas), so the last holds what is left: 22, 22 and 20 for 3), so that rollouts start spread over
    /// them rather than all on the first replica up.
    func waitForShardsShared(timeout: Double = 120) async throws {
        guard postgres != nil else { return }
        let fairShare = (64 + servers.count - 1) / servers.count
        let floorShare = max(1, 64 - (servers.count - 1) * fairShare)
        let deadline = Date().addingTimeInterval(timeout)
        var owned: [Double] = []
        while Date() < deadline {
            owned = []
            for server in servers { owned.append(counterSum("sluice_shards_owned", in: try await server.metrics())) }
            if owned.reduce(0, +) == 64, owned.allSatisfy({ $0 >= Double(floorShare) }) { return }
            try await Task.sleep(for: .milliseconds(250))  // polling the replicas' lease gauges
        }
        throw BenchError("the replicas did not share the 64 shards within \(Int(timeout)) s (owned: \(owned))")
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
        try await forEach(concurrency: concurrency) { index in try await self.startRollout(index) }
        setupSeconds = Date().timeIntervalSince(began)
    }

    /// Starts rollout `index`, through replica `index % replicas`: one that does not hold the rollout's shard queues the
    /// start for the one that does (docs/ha.md, "Commands on any replica"). A 503 (not carried out in time: leases
    /// moving) is asked again of the next replica, until one starts it or the minute is up.
    private func startRollout(_ index: Int) async throws {
        let name = Self.name(index)
        let body = #"{"strategy":"scale/\#(name)","version":"v2"}"#
        let deadline = Date().addingTimeInterval(60)
        var last = (status: 0, body: "")
        while Date() < deadline {
            for offset in servers.indices {
                last = try await servers[(index + offset) % servers.count].request(.POST, "/v1/rollouts", body: body)
                // 409: the strategy has its active rollout already (a start sent again after a closed connection).
                if last.status == 201 || last.status == 409 { return }
                guard last.status == 503 else { break }
            }
            guard last.status == 503 else { break }
            try await Task.sleep(for: .milliseconds(200))  // no replica owned the shard: leases moving, ask again
        }
        throw BenchError("start rollout of \(name): \(last.status) \(last.body.prefix(300))")
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
        var metrics: [String] = []
        for server in servers { metrics.append(try await server.metrics()) }
        let lateness = metrics.map { histogramBuckets("sluice_tick_lateness_seconds", in: $0) }
        return FleetSnapshot(
            replicas: try servers.map { try ProcessSample.read(pid: $0.pid) },
            bench: try ProcessSample.read(pid: getpid()),
            postgresCPUSeconds: try postgres.map { try postgresCPUSeconds($0.cluster) },
            prometheusRequests: prometheus.state.withLock { $0.requests },
            caddyRequests: caddy.state.withLock { $0.requests },
            storeBytes: try await storeBytes(),
            lateness: mergedBuckets(lateness),
            replicaTicks: lateness.map { $0.last?.count ?? 0 },
            duration: mergedBuckets(metrics.map { histogramBuckets("sluice_reconcile_duration_seconds", in: $0) }),
            rollbacks: metrics.map { counterSum("sluice_rollbacks_total", in: $0) }.reduce(0, +),
            load: oneMinuteLoadAverage())
    }

    /// The store's size: SQLite's files, or PostgreSQL's `pg_database_size`.
    private func storeBytes() async throws -> Int64 {
        guard let postgres else { return sluice.storeBytes }
        let size = try await postgres.cluster.sql("SELECT pg_database_size(current_database())", database: postgres.database)
        return Int64(size.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    func stop() {
        for server in servers { server.stop() }
        if let cluster = postgres?.cluster {
            // The cluster's directory goes with it: keep its log beside the replicas' for inspection.
            try? FileManager.default.copyItem(
                atPath: cluster.directory + "/postgres.log", toPath: directory.appendingPathComponent("postgres.log").path)
            cluster.stop()
        }
        try? prometheus.server.shutdown()
        try? caddy.server.shutdown()
    }
}

/// The counters of a fleet at one moment.
struct FleetSnapshot {
    /// Each replica's process (one on SQLite).
    var replicas: [ProcessSample]
    var bench: ProcessSample
    /// CPU time of every PostgreSQL process so far (postmaster and its children), in seconds; nil on SQLite.
    var postgresCPUSeconds: Double?
    var prometheusRequests: Int
    var caddyRequests: Int
    var storeBytes: Int64
    /// Histograms summed over the replicas.
    var lateness: [(bound: Double, count: Double)]
    /// Ticks observed so far by each replica (its lateness histogram's count).
    var replicaTicks: [Double]
    var duration: [(bound: Double, count: Double)]
    var rollbacks: Double
    var load: Double

    /// The first replica's process (the only one on SQLite).
    var process: ProcessSample { replicas[0] }
}

/// Cumulative histograms with the same buckets, summed bucket by bucket (the replicas' histograms as one).
func mergedBuckets(_ histograms: [[(bound: Double, count: Double)]]) -> [(bound: Double, count: Double)] {
    var sums: [Double: Double] = [:]
    for histogram in histograms {
        for bucket in histogram { sums[bucket.bound, default: 0] += bucket.count }
    }
    return sums.map { (bound: $0.key, count: $0.value) }.sorted { $0.bound < $1.bound }
}

/// CPU time (user + system) of a PostgreSQL cluster so far, in seconds, from /proc: the postmaster (its pid is the
/// first line of `data/postmaster.pid`) with the children it has reaped (`cutime`, `cstime`), and every live child
/// (the backends serving the replicas, the WAL writer, the checkpointer...). A backend that exits moves its time from
/// the second sum to the first, so the total only grows.
func postgresCPUSeconds(_ cluster: PostgresCluster) throws -> Double {
    let pidFile = try String(contentsOfFile: cluster.directory + "/data/postmaster.pid", encoding: .utf8)
    guard let postmaster = Int32(pidFile.split(separator: "\n").first ?? "") else {
        throw BenchError("unreadable \(cluster.directory)/data/postmaster.pid")
    }
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    /// utime, stime, cutime, cstime and the parent of `pid` (fields 4, 14-17 of /proc/PID/stat).
    func stat(_ pid: Int32) -> (parent: Int32, own: Double, children: Double)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 14 else { return nil }
        let value = { (index: Int) in Double(fields[index]) ?? 0 }
        return (Int32(fields[1]) ?? 0, (value(11) + value(12)) / ticks, (value(13) + value(14)) / ticks)
    }
    guard let main = stat(postmaster) else { throw BenchError("no PostgreSQL process \(postmaster)") }
    var total = main.own + main.children
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(entry), pid != postmaster, let child = stat(pid), child.parent == postmaster else { continue }
        total += child.own
    }
    return total
}
