import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A real Prometheus (the Debian package) for one test: its own config, data directory and port,
/// scraping `targets` every `scrapeInterval`. Ready to be queried when `start` returns; the first
/// sample arrives some seconds later, so tests wait for data, not for readiness.
public final class PrometheusServer: Sendable {
    public static let binary = "/usr/bin/prometheus"
    public static let installHint = "apt-get install -y prometheus (scripts/setup does)"

    public let port: Int
    public let directory: String
    private let managed: ManagedProcess

    /// `http://127.0.0.1:PORT`, what a strategy's `prometheus.address` points at.
    public var address: String { "http://127.0.0.1:\(port)" }
    public var isRunning: Bool { managed.isRunning }

    init(port: Int, directory: String, managed: ManagedProcess) {
        self.port = port
        self.directory = directory
        self.managed = managed
    }

    /// Starts Prometheus scraping `targets` (`host:port`) as job `job`, evaluating the rule files `ruleFiles`
    /// (absolute paths) every `scrapeInterval`, and waits until it accepts connections.
    public static func start(
        targets: [String], job: String = "exporter", scrapeInterval: String = "1s", ruleFiles: [String] = [],
        timeout: Duration = .seconds(20)
    ) async throws -> PrometheusServer {
        let directory = try makeTemporaryDirectory("sluice-prometheus")
        let port = try freePort()
        let quoted = targets.map { "'\($0)'" }.joined(separator: ", ")
        let config = """
            global:
              scrape_interval: \(scrapeInterval)
              evaluation_interval: \(scrapeInterval)
            rule_files: [\(ruleFiles.map { "'\($0)'" }.joined(separator: ", "))]
            scrape_configs:
              - job_name: \(job)
                static_configs:
                  - targets: [\(quoted)]

            """
        let configPath = directory + "/prometheus.yml"
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        let managed = try ManagedProcess(
            name: "prometheus", executable: binary,
            arguments: [
                "--config.file=\(configPath)", "--storage.tsdb.path=\(directory)/data",
                "--web.listen-address=127.0.0.1:\(port)", "--storage.tsdb.retention.time=1h",
            ],
            directory: directory, installHint: installHint
        )
        try await waitUntilListening(managed, port: port, timeout: timeout)
        return PrometheusServer(port: port, directory: directory, managed: managed)
    }

    /// Stops Prometheus (SIGTERM, then SIGKILL), waits for it to exit and deletes its TSDB (the log
    /// stays for failure messages).
    public func stop() {
        managed.stop()
        try? FileManager.default.removeItem(atPath: directory + "/data")
    }

    /// The last lines of Prometheus' log, for failure messages.
    public func logTail() -> String { managed.logTail() }

    /// After `stop()`: whether Prometheus exited with status 0 rather than being killed.
    public var exitedCleanly: Bool { managed.exitedCleanly }
}

/// Waits until `managed` accepts connections on 127.0.0.1:`port`; stops it and fails with its log
/// when it exits or does not listen in time.
func waitUntilListening(_ managed: ManagedProcess, port: Int, timeout: Duration) async throws {
    do {
        try await waitUntil("\(managed.name) to listen on 127.0.0.1:\(port)", timeout: timeout) {
            !managed.isRunning || canConnect(port: port)
        }
        guard managed.isRunning else { throw SupportError("\(managed.name) exited before listening") }
    } catch {
        managed.stop()
        throw SupportError("\(error)\n\(managed.logTail())")
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port` right now.
public func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}
