import ArgumentParser
import AsyncHTTPClient
import Foundation

/// Where to find the release `sluice` binary and how to set up a fleet; shared by `scale` and `soak`.
struct FleetOptions: ParsableArguments {
    @Option(help: "The sluice binary (release build of the root package: swift build -c release --product sluice).")
    var sluice = defaultSluiceBinary()

    @Option(help: "Analysis interval of every rollout, in seconds.")
    var interval = 10

    @Option(help: "Warm-up after every rollout has been sampled twice, before measuring (e.g. 20s).")
    var warmup = "20s"

    @Option(help: "API calls in flight while applying strategies and starting rollouts.")
    var setupConcurrency = 16

    @Option(help: "Directory for each run's config, store and log (kept for inspection); default a temporary one.")
    var workDirectory: String?

    @Option(help: "Store: sqlite (one sluice serve) or postgres (a PostgreSQL cluster started for the run, as the tests start theirs).")
    var backend = ScaleBackend.sqlite

    @Option(help: "sluice serve replicas sharing the store (postgres only).")
    var replicas = 1

    func directory(_ label: String) -> URL {
        let base = workDirectory.map { URL(fileURLWithPath: $0) } ?? FileManager.default.temporaryDirectory
        return base.appendingPathComponent("sluice-bench-\(label)-\(UUID().uuidString.prefix(8))")
    }

    /// Starts a fleet of `rollouts` and waits until it is warm (every rollout sampled twice, then `warmup`).
    func startFleet(_ rollouts: Int, label: String, http: HTTPClient) async throws -> ScaleFleet {
        guard replicas >= 1, backend == .postgres || replicas == 1 else {
            throw ValidationError("--replicas: one on SQLite (a second sluice serve refuses its file), 1 or more on postgres")
        }
        raiseOpenFileLimit()
        let fleet = try await ScaleFleet(
            rollouts: rollouts, interval: interval, binary: sluice, directory: directory(label), http: http,
            backend: backend, replicas: replicas)
        do {
            try await fleet.waitForShardsShared()
            try await fleet.start(concurrency: setupConcurrency)
            try await fleet.waitForTicks(2, timeout: Double(interval) * 6 + Double(rollouts) / 50)
            try await Task.sleep(for: .seconds(try parseBenchDuration(warmup)))  // the warm-up, by design
        } catch {
            fleet.stop()
            throw error
        }
        return fleet
    }
}

/// `../.build/release/sluice` relative to this package, found from this source file's path.
func defaultSluiceBinary() -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/release/sluice").path
}

extension ScaleBackend: ExpressibleByArgument {}

/// `sluice-bench scale`: N active rollouts in one `sluice serve` (or in replicas on PostgreSQL), each with 2 checks
/// sampled every interval.
struct ScaleBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Tick lateness, CPU, RSS, outbound requests and store growth of N active rollouts in sluice serve (SQLite, or replicas on PostgreSQL)."
    )

    @Option(help: "Numbers of active rollouts, comma-separated.")
    var rollouts = "100,1000,10000"

    @Option(help: "Measured time per run (after warm-up), e.g. 120s.")
    var duration = "120s"

    @Option(help: "Runs per N; the table shows medians over runs.")
    var runs = 3

    @Option(help: "Stop sluice serve (SIGSTOP; the first replica) this long as measuring starts (e.g. 5s); then how long until it caught up.")
    var stall = "0s"

    @OptionGroup var fleet: FleetOptions

    func run() async throws {
        let sizes = try rollouts.split(separator: ",").map { text -> Int in
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value > 0 else {
                throw ValidationError("--rollouts takes positive numbers separated by commas, got '\(text)'")
            }
            return value
        }
        let seconds = try parseBenchDuration(duration)
        let stallSeconds = try parseBenchDuration(stall)
        let http = HTTPClient.shared
        print("sluice-bench scale: rollouts \(sizes), \(runs) run(s) each, \(Int(seconds)) s measured after warm-up "
            + "\(fleet.warmup), interval \(fleet.interval) s, stall \(stall); \(fleet.backend.rawValue), \(fleet.replicas) replica(s); "
            + "\(ProcessInfo.processInfo.activeProcessorCount) cores; "
            + "sluice \(fleet.sluice)")
        var results: [Int: [ScaleResult]] = [:]
        for run in 1...runs {
            for size in sizes {
                let result = try await measure(size, seconds: seconds, stall: stallSeconds, http: http)
                results[size, default: []].append(result)
                print("run \(run) " + result.line)
                fflush(nil)  // each run reaches a redirected log at once
            }
        }
        print("")
        print(ScaleResult.tableHeader)
        for size in sizes { print(ScaleResult.medianRow(results[size] ?? [])) }
    }

    private func measure(_ size: Int, seconds: Double, stall: Double, http: HTTPClient) async throws -> ScaleResult {
        let fleet = try await fleet.startFleet(size, label: "scale-\(size)", http: http)
        defer { fleet.stop() }
        fleet.prometheus.state.withLock { $0.recording = true }
        let before = try await fleet.snapshot()
        var stallEnd: Date?
        if stall > 0 {
            kill(fleet.sluice.pid, SIGSTOP)
            try await Task.sleep(for: .seconds(stall))  // the stall being measured
            kill(fleet.sluice.pid, SIGCONT)
            stallEnd = Date()
        }
        var rss: [[Double]] = Array(repeating: [], count: fleet.servers.count)
        // With a stall: the lateness histogram every second, to see when the controller has caught up.
        var lastLate: Date?
        var previous = before.lateness
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            try await Task.sleep(for: .seconds(1))  // RSS sampling period
            for (index, server) in fleet.servers.enumerated() {
                rss[index].append(Double(try ProcessSample.read(pid: server.pid).rss))
            }
            if stallEnd != nil {
                let current = histogramBuckets("sluice_tick_lateness_seconds", in: try await fleet.sluice.metrics())
                if let p99 = histogramQuantile(0.99, before: previous, after: current), p99 > 1 { lastLate = Date() }
                previous = current
            }
        }
        let after = try await fleet.snapshot()
        let gaps = fleet.prometheus.state.withLock { state -> [UInt64] in
            state.recording = false
            return state.gaps
        }
        let externalLateness = gaps.map { Double($0) / 1e9 - Double(fleet.interval) }
        // Caught up: the last second in which the ticks' p99 lateness was over 1 s ended this long after the stall.
        let recovery = stallEnd.map { end in lastLate.map { $0.timeIntervalSince(end) } ?? 0 }
        let wall = after.process.time.timeIntervalSince(before.process.time)
        let replicaCPU = zip(before.replicas, after.replicas).map { ($1.cpuSeconds - $0.cpuSeconds) / wall * 100 }
        return ScaleResult(
            rollouts: size,
            replicas: fleet.servers.count,
            setupSeconds: fleet.setupSeconds,
            latenessP50: histogramQuantile(0.5, before: before.lateness, after: after.lateness),
            latenessP99: histogramQuantile(0.99, before: before.lateness, after: after.lateness),
            externalP50: nearestRank(externalLateness, 0.5),
            externalP99: nearestRank(externalLateness, 0.99),
            externalMax: externalLateness.max(),
            stallSeconds: stall,
            recoverySeconds: recovery,
            tickP50: histogramQuantile(0.5, before: before.duration, after: after.duration),
            tickP99: histogramQuantile(0.99, before: before.duration, after: after.duration),
            samplesTaken: (after.lateness.last?.count ?? 0) - (before.lateness.last?.count ?? 0),
            replicaTicks: zip(before.replicaTicks, after.replicaTicks).map { $1 - $0 },
            cpuPercent: replicaCPU.reduce(0, +),
            replicaCPUPercent: replicaCPU,
            postgresCPUPercent: after.postgresCPUSeconds.map { ($0 - (before.postgresCPUSeconds ?? 0)) / wall * 100 },
            benchCPUPercent: (after.bench.cpuSeconds - before.bench.cpuSeconds) / wall * 100,
            rssMedianMB: rss.map { median($0) / 1_048_576 }.reduce(0, +),
            replicaRSSMedianMB: rss.map { median($0) / 1_048_576 },
            rssPeakMB: after.replicas.map { Double($0.peakRSS) / 1_048_576 }.max() ?? 0,
            threads: after.process.threads,
            requestsPerSecond: Double(
                after.prometheusRequests + after.caddyRequests - before.prometheusRequests - before.caddyRequests)
                / wall,
            storeMBPerHour: Double(after.storeBytes - before.storeBytes) / 1_048_576 / wall * 3600,
            storeMB: Double(after.storeBytes) / 1_048_576,
            rollbacks: after.rollbacks,
            load: [before.load, after.load])
    }
}

/// The figures of one run.
struct ScaleResult {
    var rollouts: Int
    var replicas: Int
    var setupSeconds: Double
    var latenessP50: Double?
    var latenessP99: Double?
    var externalP50: Double?
    var externalP99: Double?
    var externalMax: Double?
    var stallSeconds: Double
    /// After a stall: how long after it ended the last second whose ticks were late by more than 1 s (p99) ended.
    var recoverySeconds: Double?
    var tickP50: Double?
    var tickP99: Double?
    var samplesTaken: Double
    /// Ticks each replica observed in the window (how the rollouts were spread over the replicas).
    var replicaTicks: [Double]
    /// All replicas together (the one on SQLite), in % of one core; and each.
    var cpuPercent: Double
    var replicaCPUPercent: [Double]
    /// Every PostgreSQL process together, in % of one core; nil on SQLite.
    var postgresCPUPercent: Double?
    var benchCPUPercent: Double
    /// The sum of the replicas' RSS medians (the one on SQLite), and each replica's.
    var rssMedianMB: Double
    var replicaRSSMedianMB: [Double]
    /// The highest peak of any replica.
    var rssPeakMB: Double
    var threads: Int
    var requestsPerSecond: Double
    var storeMBPerHour: Double
    var storeMB: Double
    var rollbacks: Double
    var load: [Double]

    var line: String {
        String(
            format: "N=%-6d setup %.1f s | lateness p50 %@ p99 %@ (histogram), p50 %@ p99 %@ (Prometheus arrivals) | "
                + "tick p50 %@ p99 %@ | ticks %.0f | CPU %.0f%% (bench %.0f%%) | RSS median %.0f MB peak %.0f MB, "
                + "%d threads | out %.0f req/s | store %.1f MB/h (%.1f MB) | rollbacks %.0f | load %.1f→%.1f",
            rollouts, setupSeconds, scaleMillis(latenessP50), scaleMillis(latenessP99), scaleMillis(externalP50), scaleMillis(externalP99), scaleMillis(tickP50),
            scaleMillis(tickP99), samplesTaken, cpuPercent, benchCPUPercent, rssMedianMB, rssPeakMB, threads,
            requestsPerSecond, storeMBPerHour, storeMB, rollbacks, load[0], load[1])
            + (replicas > 1 || postgresCPUPercent != nil
                ? String(format: " | %d replicas: RSS median %@ MB, CPU %@%%, ticks %@ | PostgreSQL CPU %.0f%%", replicas,
                         scaleList(replicaRSSMedianMB), scaleList(replicaCPUPercent), scaleList(replicaTicks),
                         postgresCPUPercent ?? 0)
                : "")
            + (recoverySeconds.map {
                String(format: " | stall %.0f s: p99 lateness under 1 s again %.0f s after it, latest sample %@", stallSeconds, $0,
                       scaleMillis(externalMax))
            } ?? "")
    }

    static let tableHeader = """
        | active rollouts | replicas | tick lateness p50 / p99 | same, from Prometheus arrivals | CPU (of one core), all replicas | RSS median per replica (highest peak) | PostgreSQL CPU | outbound req/s | store growth | load avg |
        |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
        """

    /// One table row: the median of every figure over `runs`.
    static func medianRow(_ runs: [ScaleResult]) -> String {
        func med(_ values: [Double?]) -> Double? {
            let present = values.compactMap { $0 }
            return present.isEmpty ? nil : median(present)
        }
        guard let first = runs.first else { return "" }
        let perReplica = (0..<first.replicas).map { index in
            median(runs.map { index < $0.replicaRSSMedianMB.count ? $0.replicaRSSMedianMB[index] : 0 })
        }
        let postgresCPU = med(runs.map(\.postgresCPUPercent)).map { String(format: "%.0f%%", $0) } ?? "–"
        return String(
            format: "| %d | %d | %@ / %@ | %@ / %@ | %.0f%% | %@ MB (%.0f) | %@ | %.0f | %.1f MB/h | %.1f–%.1f |",
            first.rollouts, first.replicas, scaleMillis(med(runs.map(\.latenessP50))), scaleMillis(med(runs.map(\.latenessP99))),
            scaleMillis(med(runs.map(\.externalP50))), scaleMillis(med(runs.map(\.externalP99))), median(runs.map(\.cpuPercent)),
            scaleList(perReplica), median(runs.map(\.rssPeakMB)), postgresCPU as NSString, median(runs.map(\.requestsPerSecond)),
            median(runs.map(\.storeMBPerHour)), runs.flatMap(\.load).min() ?? 0, runs.flatMap(\.load).max() ?? 0)
    }
}

/// Whole numbers separated by slashes (`230 / 214 / 221`), per replica.
func scaleList(_ values: [Double]) -> NSString {
    values.map { String(format: "%.0f", $0) }.joined(separator: " / ") as NSString
}

/// Seconds as milliseconds for a table (`–` when unknown).
func scaleMillis(_ seconds: Double?) -> NSString {
    guard let seconds else { return "–" }
    return String(format: "%.1f ms", seconds * 1000) as NSString
}
