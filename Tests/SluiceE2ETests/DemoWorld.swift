import Foundation
import SluiceAPI
import SluiceCore
import SluiceDemo
import SluiceHTTP
import SluiceTestSupport
import Synchronization

/// The built `sluice-demo-app`: `$SLUICE_DEMO_APP_BIN`, else beside `$SLUICE_BIN`, else `.build/debug`.
func demoAppBinary() throws -> String {
    let environment = ProcessInfo.processInfo.environment
    let path =
        environment["SLUICE_DEMO_APP_BIN"]
        ?? environment["SLUICE_BIN"].map {
            URL(fileURLWithPath: $0).deletingLastPathComponent().appendingPathComponent("sluice-demo-app").path
        }
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
            try await waitUntil("the demo app \(version) to listen on \(port)", timeout: .seconds(30)) {
                guard managed.isRunning else { throw SupportError("the demo app exited") }
                return canConnect(port: port)
            }
        } catch {
            managed.stop()
            throw SupportError("\(error)\n\(managed.logTail())")
        }
    }
}

/// `sluice-demo-app load` as a subprocess, as scripts/demo runs it: `rate` GETs a second through `url`, each
/// answer appended to `logPath` as `UNIX_MS VERSION STATUS`.
final class LoadProcess: Sendable {
    let managed: ManagedProcess
    let logPath: String

    init(url: String, rate: Int, seconds: Int, directory: String) throws {
        logPath = directory + "/traffic.log"
        managed = try ManagedProcess(
            name: "load", executable: try demoAppBinary(),
            arguments: ["load", "--url", url, "--rps", "\(rate)", "--duration", "\(seconds)", "--log", logPath],
            directory: directory, installHint: "swift build --product sluice-demo-app")
    }

    /// What the load has seen so far (the whole log once the process has exited).
    func traffic() -> TrafficLog { (try? TrafficLog(contentsOf: logPath)) ?? TrafficLog() }
}

/// `sluice serve` as a subprocess, as scripts/demo runs it: its own config, one admin token, a SQLite state
/// file in `directory`, the API on a free port.
final class ServeProcess: Sendable {
    let managed: ManagedProcess
    let url: String
    let tokenPath: String

    /// `people` are more tokens (name to role) for the dashboard's tests; `tokens[name]` is each one's token.
    let tokens: [String: String]

    init(directory: String, people: [String: Role] = [:]) async throws {
        let port = try freePort()
        let token = UUID().uuidString + UUID().uuidString
        tokenPath = directory + "/token"
        try token.write(toFile: tokenPath, atomically: true, encoding: .utf8)
        var tokens: [String: String] = [:]
        var file = "tokens:\n  - {name: e2e, role: admin, sha256: \(TokenHash.hex(token))}\n"
        for (name, role) in people.sorted(by: { $0.key < $1.key }) {
            tokens[name] = UUID().uuidString + UUID().uuidString
            file += "  - {name: \(name), role: \(role), sha256: \(TokenHash.hex(tokens[name]!))}\n"
        }
        self.tokens = tokens
        try file.write(toFile: directory + "/tokens.yaml", atomically: true, encoding: .utf8)
        try "listen: 127.0.0.1:\(port)\ntokensFile: tokens.yaml\nstatePath: sluice.db\n"
            .write(toFile: directory + "/sluice.yaml", atomically: true, encoding: .utf8)
        url = "http://127.0.0.1:\(port)"
        managed = try ManagedProcess(
            name: "sluice-serve", executable: try sluiceBinary(),
            arguments: ["serve", "--config", directory + "/sluice.yaml"],
            directory: directory, installHint: "swift build --product sluice")
        let (managed, ready) = (managed, url + "/readyz")
        let http = try CurlClient()
        do {
            try await waitUntil("sluice serve to be ready at \(ready)", timeout: .seconds(30)) {
                guard managed.isRunning else { throw SupportError("sluice serve exited") }
                let request = HTTPRequest(url: ready, timeout: .seconds(2), retry: .init(maxAttempts: 1))
                return try await http.execute(request).status == 200
            }
        } catch {
            managed.stop()
            throw SupportError("\(error)\n\(managed.logTail())")
        }
    }

    /// Runs `sluice ARGUMENTS --server URL --token-file FILE`, bounded by `timeout`.
    func cli(_ arguments: [String], timeout: Duration = .seconds(30)) async throws -> CommandResult {
        try await runSluice(arguments + ["--server", url, "--token-file", tokenPath], timeout: timeout)
    }

    /// The event log through `sluice events STRATEGY -o json`, oldest first.
    func events(_ strategy: String) async throws -> [Event] {
        let result = try await cli(["events", strategy, "-o", "json"])
        guard result.status == 0 else { throw SupportError("sluice events exited \(result.status): \(result.stderr)") }
        return try result.stdout.split(separator: "\n").map(Event.fromLogLine)
    }
}

/// The demo's parts for one test, each its own process as scripts/demo runs them: two `sluice-demo-app` pools
/// (blue runs v1 and has all traffic, green runs v2), a real Prometheus scraping both, a real Caddy splitting
/// between them, `sluice serve` with strategies/demo.yaml applied (`interval` and `hold` for a faster clock,
/// `edit` for the test's own changes), and `sluice-demo-app load` through Caddy, answering once `init` returns.
///
/// Prometheus scrapes every `scrapeInterval`, a quarter of the tests' 2 s interval: a comparison check counts
/// `increase(...[{{interval}}])`, which is empty when its window holds fewer than two scrapes, and a window only
/// twice the scrape interval holds one whenever the tick's phase sits on the target's (docs/judge.md).
final class DemoWorld: Sendable {
    static let scrapeInterval = "500ms"

    let directory: String
    let blue: DemoAppProcess
    let green: DemoAppProcess
    let prometheus: PrometheusServer
    let caddy: CaddyServer
    let serve: ServeProcess
    let load: LoadProcess
    /// The strategy as applied.
    let strategy: Strategy
    /// Apps started in place of `blue` or `green` by `restart`, stopped by `stop` with the rest.
    private let restarted = Mutex<[DemoAppProcess]>([])

    init(
        _ name: String, interval: String = "2s", hold: String, rate: Int, people: [String: Role] = [:],
        edit: (String) -> String = { $0 }
    ) async throws {
        directory = try makeTemporaryDirectory(name)
        blue = try await DemoAppProcess(port: try freePort(), version: "v1", directory: directory)
        green = try await DemoAppProcess(port: try freePort(), version: "v2", directory: directory)
        prometheus = try await PrometheusServer.start(
            targets: [blue.dial, green.dial], job: "demo", scrapeInterval: Self.scrapeInterval)
        let dials = [blue.dial, green.dial]
        caddy = try await CaddyServer.start(backendBodies: []) { _ in
            CaddyServer.weightedProxy(id: "demo", dials: dials, weights: [1, 0])
        }
        serve = try await ServeProcess(directory: directory, people: people)
        let (yaml, _) = try demoStrategy(
            blue: blue.dial, green: green.dial, caddyAdmin: caddy.adminURL, prometheus: prometheus.address,
            interval: interval, hold: hold)
        let path = directory + "/demo.yaml"
        let edited = edit(yaml)
        try edited.write(toFile: path, atomically: true, encoding: .utf8)
        strategy = try StrategyLoader.loadOne(yaml: edited, file: path)
        let applied = try await serve.cli(["apply", "-f", path])
        guard applied.status == 0, applied.stdout.contains("strategy default/demo created") else {
            throw SupportError("sluice apply exited \(applied.status): \(applied.stdout)\(applied.stderr)")
        }
        load = try LoadProcess(url: caddy.proxyURL, rate: rate, seconds: 300, directory: directory)
        let load = load
        try await waitUntil("v1 answers through Caddy", timeout: .seconds(20)) { load.traffic().lastSeen("v1") != nil }
    }

    /// Stops `app` and starts `version` on its port in its place.
    func restart(_ app: DemoAppProcess, version: String, errorRate: Double = 0) async throws -> DemoAppProcess {
        app.managed.stop()
        let next = try await DemoAppProcess(port: app.port, version: version, errorRate: errorRate, directory: directory)
        restarted.withLock { $0.append(next) }
        return next
    }

    /// The weight of each pool (by dial) in Caddy's running config, read back from its admin API.
    func weights() async throws -> [String: Int] {
        try await caddyWeights(caddy.adminURL, id: "demo", try CurlClient())
    }

    /// The event log, the answers the load counted by version and the server's log: what a failure needs.
    func diagnosis() async -> String {
        let events = (try? await serve.events("demo"))?.map { "\($0.type) \($0.message)" } ?? []
        return "events:\n\(events.joined(separator: "\n"))\nanswers by version at Caddy: "
            + "\(load.traffic().counts(from: 0, to: .max))\nsluice serve:\n\(serve.managed.logTail(2000))"
    }

    func stop() {
        load.managed.stop()
        serve.managed.stop()
        caddy.stop()
        prometheus.stop()
        for app in [blue, green] + restarted.withLock({ $0 }) { app.managed.stop() }
        try? FileManager.default.removeItem(atPath: directory)
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
        ("http://127.0.0.1:19090", prometheus, 1), ("interval: 5s", "interval: \(interval)", 1),
        ("hold: 10s", "hold: \(hold)", 3),
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

/// When a breach of `version` first became visible in Prometheus, read back from Prometheus' own data: each
/// check's query is evaluated over `[from, to]` every 100 ms (a range query evaluates at time t only the
/// samples scraped by t), and the earliest time any check is out of bounds is returned with its name.
func firstBreachVisible(
    checks: [Check], version: String, prometheus: String, from: Int64, to: Int64, client: any HTTPClient
) async throws -> (milliseconds: Int64, check: String)? {
    var first: (milliseconds: Int64, check: String)?
    for check in checks {
        var components = URLComponents(string: prometheus + "/api/v1/query_range")!
        components.queryItems = [
            URLQueryItem(name: "query", value: check.query.replacingOccurrences(of: "{{version}}", with: version)),
            URLQueryItem(name: "start", value: String(format: "%.3f", Double(from) / 1000)),
            URLQueryItem(name: "end", value: String(format: "%.3f", Double(to) / 1000)),
            URLQueryItem(name: "step", value: "0.1"),
        ]
        let response = try await client.execute(HTTPRequest(url: components.url!.absoluteString, timeout: .seconds(10)))
        let body = String(decoding: response.body, as: UTF8.self)
        guard response.status == 200,
            let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
            let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]]
        else { throw SupportError("Prometheus query_range for \(check.name): \(response.status) \(body)") }
        for series in result {
            for case let pair as [Any] in series["values"] as? [Any] ?? [] where pair.count == 2 {
                guard let time = pair[0] as? Double, let text = pair[1] as? String, let value = Double(text),
                    check.verdict(for: value) == .breach
                else { continue }
                let milliseconds = Int64((time * 1000).rounded())
                if milliseconds < first?.milliseconds ?? .max { first = (milliseconds, check.name) }
                break
            }
        }
    }
    return first
}

/// The weight of each upstream of Caddy's handler `id`, as its admin API returns the handler.
func caddyWeights(_ admin: String, id: String, _ http: any HTTPClient) async throws -> [String: Int] {
    let response = try await http.execute(HTTPRequest(url: admin + "/id/\(id)", timeout: .seconds(5)))
    guard response.status == 200, let handler = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
    else { throw SupportError("Caddy admin /id/\(id): \(response.status)") }
    let dials = (handler["upstreams"] as? [[String: Any]] ?? []).compactMap { $0["dial"] as? String }
    let policy = (handler["load_balancing"] as? [String: Any])?["selection_policy"] as? [String: Any]
    let weights = (policy?["weights"] as? [Any] ?? []).map { ($0 as? NSNumber)?.intValue ?? 0 }
    var result: [String: Int] = [:]
    for (index, dial) in dials.enumerated() { result[dial] = index < weights.count ? weights[index] : 0 }
    return result
}
