import ArgumentParser
import AsyncHTTPClient
import Foundation

/// `sluice-bench soak`: N active rollouts for a long time; RSS, CPU and the store every `--every`, then whether
/// RSS grew after the warm-up.
struct SoakBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "RSS, CPU and store size of N active rollouts over a long run, and RSS growth after warm-up."
    )

    @Option(help: "Active rollouts.")
    var rollouts = 1000

    @Option(help: "Measured time after warm-up, e.g. 30m.")
    var duration = "30m"

    @Option(help: "Reporting period, e.g. 30s.")
    var every = "30s"

    @Option(help: "The first part of the measured time left out of the growth verdict (caches filling), e.g. 5m.")
    var settle = "5m"

    @OptionGroup var fleet: FleetOptions

    func run() async throws {
        let seconds = try parseBenchDuration(duration)
        let period = try parseBenchDuration(every)
        let settleSeconds = try parseBenchDuration(settle)
        let http = HTTPClient.shared
        print("sluice-bench soak: \(rollouts) rollouts, \(Int(seconds)) s measured after warm-up \(fleet.warmup), "
            + "reported every \(Int(period)) s; growth judged after the first \(Int(settleSeconds)) s")
        let fleet = try await fleet.startFleet(rollouts, label: "soak-\(rollouts)", http: http)
        defer { fleet.stop() }
        print("setup \(String(format: "%.1f", fleet.setupSeconds)) s; store in \(fleet.sluice.directory.path)")
        print("elapsed_s  rss_mb  peak_mb  cpu_pct  out_req_s  store_mb  lateness_p99_ms  rollbacks  load1")
        let start = try await fleet.snapshot()
        var previous = start
        var points: [(elapsed: Double, rss: Double)] = []
        while true {
            try await Task.sleep(for: .seconds(period))  // reporting period
            let now = try await fleet.snapshot()
            let elapsed = now.process.time.timeIntervalSince(start.process.time)
            let wall = now.process.time.timeIntervalSince(previous.process.time)
            let rss = Double(now.process.rss) / 1_048_576
            points.append((elapsed, rss))
            let p99 = histogramQuantile(0.99, before: previous.lateness, after: now.lateness)
            print(String(
                format: "%9.0f  %6.1f  %7.1f  %7.1f  %9.0f  %8.1f  %15@  %9.0f  %5.2f", elapsed, rss,
                Double(now.process.peakRSS) / 1_048_576, (now.process.cpuSeconds - previous.process.cpuSeconds) / wall * 100,
                Double(now.prometheusRequests + now.caddyRequests - previous.prometheusRequests - previous.caddyRequests)
                    / wall, Double(now.storeBytes) / 1_048_576, scaleMillis(p99), now.rollbacks, now.load))
            fflush(nil)  // every report reaches a redirected log at once
            previous = now
            if elapsed >= seconds { break }
        }
        let judged = points.filter { $0.elapsed > settleSeconds }
        guard judged.count >= 4 else {
            print("too few reports after the settle time to judge growth")
            return
        }
        // Least-squares slope of RSS over time, after the settle time, in MB per hour.
        let meanX = judged.map(\.elapsed).reduce(0, +) / Double(judged.count)
        let meanY = judged.map(\.rss).reduce(0, +) / Double(judged.count)
        let covariance = judged.map { ($0.elapsed - meanX) * ($0.rss - meanY) }.reduce(0, +)
        let variance = judged.map { ($0.elapsed - meanX) * ($0.elapsed - meanX) }.reduce(0, +)
        let slope = variance > 0 ? covariance / variance * 3600 : 0
        let quarter = max(1, judged.count / 4)
        let early = median(judged.prefix(quarter).map(\.rss))
        let late = median(judged.suffix(quarter).map(\.rss))
        print(String(
            format: "RSS after settling: first quarter median %.1f MB, last quarter median %.1f MB (%+.1f MB); "
                + "least-squares slope %+.2f MB/h over %d reports; load average now %.2f",
            early, late, late - early, slope, judged.count, oneMinuteLoadAverage()))
    }
}
