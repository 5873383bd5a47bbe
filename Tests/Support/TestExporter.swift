import Foundation

/// The test exporter (Tests/Simulators/exporter/exporter.py) on its own port: a service whose
/// `http_requests_total{app,track,code}` and `http_request_duration_seconds` a test controls
/// through `POST /control` while real requests flow through `GET /`.
public final class TestExporter: Sendable {
    public static let installHint = "apt-get install -y python3"

    public let port: Int
    public let app: String
    public let track: String
    private let managed: ManagedProcess

    /// `127.0.0.1:PORT`, a Prometheus scrape target.
    public var target: String { "127.0.0.1:\(port)" }
    /// `http://127.0.0.1:PORT`.
    public var url: String { "http://\(target)" }

    private init(port: Int, app: String, track: String, managed: ManagedProcess) {
        self.port = port
        self.app = app
        self.track = track
        self.managed = managed
    }

    /// Starts the exporter and waits until it accepts connections.
    public static func start(
        app: String = "checkout", track: String = "canary", timeout: Duration = .seconds(10)
    ) async throws -> TestExporter {
        let directory = try makeTemporaryDirectory("sluice-exporter")
        let port = try freePort()
        let script = repositoryRoot() + "/Tests/Simulators/exporter/exporter.py"
        let managed = try ManagedProcess(
            name: "exporter", executable: python3Path(),
            arguments: [script, "--port", String(port), "--app", app, "--track", track],
            directory: directory, installHint: installHint
        )
        try await waitUntilListening(managed, port: port, timeout: timeout)
        return TestExporter(port: port, app: app, track: track, managed: managed)
    }

    public func stop() { managed.stop() }
    public func logTail() -> String { managed.logTail() }
}

/// `python3` from the PATH, else `/usr/bin/python3`.
public func python3Path() -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    for folder in path.split(separator: ":") {
        let candidate = "\(folder)/python3"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return "/usr/bin/python3"
}
