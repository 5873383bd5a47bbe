import Foundation
import Logging
import SluiceController
import SluiceCore
import SluiceDemo
import SluiceHTTP
import SluiceProviders
import SluiceStore
import SluiceTestSupport

/// The built `sluice-demo-app`: `$SLUICE_DEMO_APP_BIN`, else beside `$SLUICE_BIN`, else `.build/debug`.
func demoAppBinary() throws -> String {
    let environment = ProcessInfo.processInfo.environment
    let path =
        environment["SLUICE_DEMO_APP_BIN"]
        ?? environment["SLUICE_BIN"].map { URL(fileURLWithPath: $0).deletingLastPathComponent().path + "/sluice-demo-app" }
        ?? repositoryRoot() + "/.build/debug/sluice-demo-app"
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw SupportError("sluice-demo-app not found at \(path); build it with `swift build` (scripts/test does)")
    }
    return path
}

/// One demo app process on 127.0.0.1:`port`.
final class DemoAppProcess: Sendable {
    let port: Int
    let version: String
    let managed: ManagedProcess
    var dial: String { "127.0.0.1:\(port)" }

    init(port: Int, version: String, errorRate: Double = 0, directory: String) async throws {
        self.port = port
        self.version = version
        managed = try ManagedProcess(
            name: "app-\(port)-\(version)", executable: try demoAppBinary(),
            arguments: ["--port", "\(port)", "--version", version, "--error-rate", "\(errorRate)", "--app", "demo"],
            directory: directory, installHint: "swift build --product sluice-demo-app")
        let managed = managed
        do {
            try await waitUntil("the demo app \(version) to listen on \(port)", timeout: .seconds(15)) {
                guard managed.isRunning else { throw SupportError("the demo app exited") }
                return canConnect(port: port)
            }
        } catch {
            managed.stop()
            throw SupportError("\(error)\n\(managed.logTail())")
        }
    }
}

/// The real providers of a strategy: the metric and router registries over one HTTP client, and the
/// pools workload of an `upstreams` target. (What `sluice serve` wires, for the controller as a library.)
struct RegistryProviderFactory: ProviderFactory {
    let http: any HTTPClient

    func providers(for strategy: Strategy, rollout: Rollout) throws -> RolloutProviders {
        let metrics = try MetricProviderRegistry(client: http).makeProviders(for: strategy.analysis)
        let router = try RouterRegistry.standard.router(
            for: strategy.traffic,
            context: RouterContext(namespace: strategy.namespace, pools: rollout.pools, http: http, environment: [:]))
        return RolloutProviders(metrics: metrics, router: router, workload: PoolsWorkload())
    }
}

/// `strategies/demo.yaml` pointed at this test's ports, with a faster clock: the same stages and checks.
func demoStrategy(blue: String, green: String, caddyAdmin: String, prometheus: String, interval: String, hold: String)
    throws -> (yaml: String, strategy: Strategy)
{
    let path = repositoryRoot() + "/strategies/demo.yaml"
    guard var yaml = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw SupportError("cannot read \(path)")
    }
    let replacements = [
        ("127.0.0.1:18081", blue, 1), ("127.0.0.1:18082", green, 1), ("http://127.0.0.1:12019", caddyAdmin, 1),
        ("http://127.0.0.1:19090", prometheus, 1), ("interval: 10s", "interval: \(interval)", 1),
        ("hold: 20s", "hold: \(hold)", 3),
    ]
    for (old, new, expected) in replacements {
        let found = yaml.components(separatedBy: old).count - 1
        guard found == expected else {
            throw SupportError("strategies/demo.yaml: expected \(expected) × \"\(old)\", found \(found)")
        }
        yaml = yaml.replacingOccurrences(of: old, with: new)
    }
    return (yaml, try StrategyLoader.loadOne(yaml: yaml, file: path))
}

/// The first moment a PromQL `query` gives a value above `threshold`, polled every 100 ms by `run`.
final class PrometheusWatch: @unchecked Sendable {
    private let lock = NSLock()
    private var seenAt: Int64?
    let address: String
    let query: String
    let threshold: Double

    init(address: String, query: String, threshold: Double) {
        self.address = address
        self.query = query
        self.threshold = threshold
    }

    var firstAbove: Int64? {
        lock.lock()
        defer { lock.unlock() }
        return seenAt
    }

    private func record(_ now: Int64) {
        lock.lock()
        seenAt = seenAt ?? now
        lock.unlock()
    }

    /// Polls until cancelled or the value is seen.
    func run(client: any HTTPClient) async {
        var components = URLComponents(string: address + "/api/v1/query")!
        components.queryItems = [URLQueryItem(name: "query", value: query)]
        let request = HTTPRequest(url: components.url!.absoluteString, timeout: .seconds(2), retry: .init(maxAttempts: 1))
        while !Task.isCancelled {
            if let value = try? await Self.value(client.execute(request)), value > threshold {
                record(unixMilliseconds())
                return
            }
            try? await Task.sleep(for: .milliseconds(100))  // the poll period of the watch
        }
    }

    static func value(_ response: HTTPResponse) -> Double? {
        guard response.status == 200,
            let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
            let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
            let first = result.first, let pair = first["value"] as? [Any], pair.count == 2,
            let text = pair[1] as? String
        else { return nil }
        return Double(text)
    }
}
