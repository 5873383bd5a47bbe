import Foundation

extension PrometheusServer {
    public static let promtool = "/usr/bin/promtool"

    /// Starts a Prometheus that scrapes nothing and holds `openMetrics` (an OpenMetrics text ending in `# EOF`,
    /// samples with timestamps in seconds) as its history: written to blocks in its data directory with
    /// `promtool tsdb create-blocks-from openmetrics` before it starts, as Prometheus' backfilling documents.
    public static func start(history openMetrics: String, timeout: Duration = .seconds(20)) async throws
        -> PrometheusServer
    {
        let directory = try makeTemporaryDirectory("sluice-prometheus-history")
        let port = try freePort()
        let input = directory + "/history.om"
        try openMetrics.write(toFile: input, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        let created = try await run(
            promtool, ["tsdb", "create-blocks-from", "openmetrics", input, directory + "/data"], in: directory,
            timeout: .seconds(60), installHint: installHint)
        guard created.status == 0 else {
            throw SupportError("promtool could not write the history (exit \(created.status)): \(created.stderr)")
        }
        let configPath = directory + "/prometheus.yml"
        try "global: {scrape_interval: 1m}\n".write(toFile: configPath, atomically: true, encoding: .utf8)
        let managed = try ManagedProcess(
            name: "prometheus", executable: binary,
            arguments: [
                "--config.file=\(configPath)", "--storage.tsdb.path=\(directory)/data",
                "--web.listen-address=127.0.0.1:\(port)",
            ],
            directory: directory, installHint: installHint
        )
        try await waitUntilListening(managed, port: port, timeout: timeout)
        // It listens before its TSDB is open, answering 503 until then.
        do {
            try await waitUntil("prometheus to load its history", timeout: timeout) {
                !managed.isRunning || managed.logTail().contains("Server is ready to receive web requests")
            }
            guard managed.isRunning else { throw SupportError("prometheus exited while loading its history") }
        } catch {
            managed.stop()
            throw SupportError("\(error)\n\(managed.logTail())")
        }
        return PrometheusServer(port: port, directory: directory, managed: managed)
    }
}
