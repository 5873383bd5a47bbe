import ArgumentParser
import Foundation
import SluiceHTTP
import SluiceTestSupport

/// `sluice-bench rollback-latency` (issue #11, point 3): the real `sluice serve` (release) as a subprocess against
/// `LoopbackFakes` (Prometheus and Caddy admin API in this process, timestamping what they serve and receive):
/// - breach: from a breaching value appearing at the metrics endpoint to the router receiving weight 0, for
///   `--trials` rollouts at once with random flip times within one interval;
/// - cli: from starting `sluice rollback NS/NAME --reason …` (a subprocess) to weight 0 at the router, and to the
///   CLI exiting with the router's confirmation (it waits until Sluice has read weight 0 back);
/// - api: from sending `POST /v1/rollouts/{id}/rollback` (what the CLI calls) to weight 0 at the router.
struct RollbackLatencyBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback-latency",
        abstract: "Breach → weight 0 and `sluice rollback` → weight 0, with the real `sluice serve`.")

    @Option(help: "The sluice binary (release); default .build/release/sluice, then Benchmarks/.build/release/sluice.")
    var sluice: String?

    @Option(help: "Trials per run and kind (rollouts at once for the breach kind).")
    var trials = 100

    @Option(help: "Runs; the summary shows the median over runs.")
    var runs = 3

    @Option(help: "analysis.interval of the strategies, in seconds.")
    var interval = 10

    @Option(help: "Seed of the random flip times (printed; default random).")
    var seed: UInt64?

    @Option(parsing: .upToNextOption, help: "Which kinds to measure: breach, cli, api.")
    var kinds = ["breach", "cli", "api"]

    func run() async throws {
        let seed = seed ?? UInt64.random(in: 1...UInt64(UInt32.max))
        let binary = try sluiceBinaryPath()
        print("sluice-bench rollback-latency: \(runs) run(s) × \(trials) trials of \(kinds.joined(separator: ", ")); "
            + "interval \(interval) s; seed \(seed); sluice \(binary); load average \(loadAverage())")
        let fakes = try LoopbackFakes()
        defer { fakes.shutdown() }
        let serve = try await SluiceServe(binary: binary, fakes: fakes, strategies: trials, interval: interval)
        defer { serve.stop() }
        var random = SplitMix64(seed: seed)
        var summary: [String: [[String: Percentiles]]] = [:]
        for run in 1...runs {
            for kind in kinds {
                let figures: [String: Percentiles]
                switch kind {
                case "breach": figures = try await breach(serve, fakes, run: run, random: &random)
                case "cli", "api": figures = try await command(kind, serve, fakes, run: run)
                default: throw ValidationError("unknown kind \(kind); known: breach, cli, api")
                }
                summary[kind, default: []].append(figures)
                for (name, value) in figures.sorted(by: { $0.key < $1.key }) {
                    print(String(format: "run %d  %-6@ %-34@ p50 %8.1f ms  p99 %8.1f ms  max %8.1f ms", run,
                        kind as NSString, name as NSString, value.p50, value.p99, value.max))
                }
                print("       load average \(loadAverage())")
            }
        }
        print("")
        print("| kind | from → to | p50 ms (runs) | p99 ms (runs) | p50 median | p99 median |")
        print("|---|---|---|---|---:|---:|")
        for kind in kinds {
            let runsOfKind = summary[kind] ?? []
            for name in (runsOfKind.first?.keys.sorted() ?? []) {
                let values = runsOfKind.compactMap { $0[name] }
                let p50s = values.map { String(format: "%.1f", $0.p50) }.joined(separator: ", ")
                let p99s = values.map { String(format: "%.1f", $0.p99) }.joined(separator: ", ")
                print(String(format: "| %@ | %@ | %@ | %@ | %.1f | %.1f |", kind as NSString, name as NSString,
                    p50s as NSString, p99s as NSString, median(values.map(\.p50)), median(values.map(\.p99))))
            }
        }
    }

    /// All `trials` rollouts at once, each breaching at a random moment within the next interval.
    private func breach(_ serve: SluiceServe, _ fakes: LoopbackFakes, run: Int, random: inout SplitMix64)
        async throws -> [String: Percentiles]
    {
        let ids = try await serve.startAll(version: "breach-\(run)", fakes: fakes)
        // Flip times spread over one interval (plus 1 s), so they fall at every phase of the 10 s tick.
        let delays = (0..<trials).map { _ in Double(random.next() % 1_000_000) / 1_000_000 * Double(interval) + 1 }
        let results = try await withThrowingTaskGroup(of: (Double, Double).self) { group in
            for index in 0..<trials {
                group.addTask { [interval] in
                    try await Task.sleep(for: .seconds(delays[index]))  // the trial's random flip time
                    let flipped = fakes.set(SluiceServe.query(index), to: 1)
                    let zero = try await fakes.waitForWeight(
                        SluiceServe.name(index), 0, after: flipped, timeout: .seconds(interval * 2 + 10))
                    let served = fakes.firstServed(SluiceServe.query(index)) ?? zero
                    return ((zero - flipped).seconds * 1000, (zero - served).seconds * 1000)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        try await serve.waitAllFinal(ids)
        return [
            "breach at endpoint → weight 0": Percentiles(results.map(\.0)),
            "breach first served → weight 0": Percentiles(results.map(\.1)),
        ]
    }

    /// One rollback after another, by the CLI (a subprocess) or by the API call it makes.
    private func command(_ kind: String, _ serve: SluiceServe, _ fakes: LoopbackFakes, run: Int)
        async throws -> [String: Percentiles]
    {
        let ids = try await serve.startAll(version: "\(kind)-\(run)", fakes: fakes)
        var toZero: [Double] = []
        var answered: [Double] = []
        for (index, id) in ids.enumerated() {
            let start = ContinuousClock.now
            let done: ContinuousClock.Instant
            if kind == "cli" {
                let process = try serve.rollbackProcess(SluiceServe.name(index))
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                let printed = output.fileHandleForReading.readDataToEndOfFile()  // until the CLI closes stdout
                process.waitUntilExit()
                done = .now
                guard process.terminationStatus == 0,
                    String(decoding: printed, as: UTF8.self).contains("confirmed by the router at")
                else {
                    throw BenchError(
                        "sluice rollback \(SluiceServe.name(index)) exited \(process.terminationStatus) without the "
                            + "router's confirmation: \(String(decoding: printed, as: UTF8.self))")
                }
            } else {
                let response = try await serve.api("POST", "/v1/rollouts/\(id)/rollback", body: #"{"reason":"bench"}"#)
                done = .now
                guard response.status == 200 else {
                    let body = String(decoding: response.body, as: UTF8.self)
                    throw BenchError("rollback of \(id): HTTP \(response.status) \(body)")
                }
            }
            let zero = try await fakes.waitForWeight(SluiceServe.name(index), 0, after: start, timeout: .seconds(10))
            toZero.append((zero - start).seconds * 1000)
            answered.append((done - start).seconds * 1000)
        }
        try await serve.waitAllFinal(ids)
        let source = kind == "cli" ? "`sluice rollback` started" : "rollback API call sent"
        let end = kind == "cli" ? "CLI exited with confirmation" : "API answered"
        return ["\(source) → weight 0": Percentiles(toZero), "\(source) → \(end)": Percentiles(answered)]
    }

    private func sluiceBinaryPath() throws -> String {
        let candidates = sluice.map { [$0] }
            ?? [repositoryRoot() + "/.build/release/sluice", repositoryRoot() + "/Benchmarks/.build/release/sluice"]
        guard let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw BenchError("no sluice binary at \(candidates.joined(separator: " or ")); build it with: "
                + "swift build -c release --product sluice")
        }
        return found
    }
}

/// `sluice serve` (a subprocess) with `strategies` strategies `bench/bench-NNN` over `LoopbackFakes`: an upstreams
/// target, the Caddy router at the fakes, one stage at 50 % held a day, one Prometheus check that breaches above 0.5.
final class SluiceServe: @unchecked Sendable {
    let url: String
    let directory: String
    let binary: String
    private let token = "bench-" + UUID().uuidString
    private let process: ManagedProcess
    private let client: CurlClient
    let strategies: Int

    static func name(_ index: Int) -> String { String(format: "bench-%03d", index) }
    static func query(_ index: Int) -> String { "bench_errors{rollout=\"\(name(index))\"}" }

    init(binary: String, fakes: LoopbackFakes, strategies: Int, interval: Int) async throws {
        self.binary = binary
        self.strategies = strategies
        directory = try makeTemporaryDirectory("sluice-bench-serve")
        client = try CurlClient()
        let port = try freePort()
        url = "http://127.0.0.1:\(port)"
        try FileManager.default.createDirectory(atPath: directory + "/strategies", withIntermediateDirectories: true)
        for index in 0..<strategies {
            try Self.strategy(index, fakes: fakes.url, interval: interval)
                .write(toFile: directory + "/strategies/\(Self.name(index)).yaml", atomically: true, encoding: .utf8)
        }
        try token.write(toFile: directory + "/token", atomically: true, encoding: .utf8)
        let hash = try SluiceUnderTest.output(of: binary, ["token", "hash"], input: token)
        try "tokens:\n  - {name: bench, role: admin, sha256: \(hash)}\n"
            .write(toFile: directory + "/tokens.yaml", atomically: true, encoding: .utf8)
        try """
            listen: 127.0.0.1:\(port)
            tokensFile: tokens.yaml
            statePath: sluice.db
            strategiesDir: strategies

            """.write(toFile: directory + "/sluice.yaml", atomically: true, encoding: .utf8)
        process = try ManagedProcess(
            name: "sluice-serve", executable: binary, arguments: ["serve", "--config", directory + "/sluice.yaml"],
            directory: directory, installHint: "swift build -c release --product sluice")
        let process = process
        let client = client
        let ready = url + "/readyz"
        try await waitUntil("sluice serve to be ready at \(ready)", timeout: .seconds(60)) {
            guard process.isRunning else { throw BenchError("sluice serve exited: \(process.logTail())") }
            return try await client.execute(HTTPRequest(url: ready, timeout: .seconds(1), retry: .none)).status == 200
        }
    }

    func stop() {
        process.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// One API request with the bench's admin token.
    func api(_ method: String, _ path: String, body: String? = nil) async throws -> HTTPResponse {
        try await client.execute(HTTPRequest(
            method: method, url: url + path, headers: body == nil ? [] : [("Content-Type", "application/json")],
            body: body.map { Data($0.utf8) }, timeout: .seconds(10), auth: .bearer(token), retry: .none))
    }

    /// Starts a rollout of every strategy, with every check passing, and waits until every router handler is at
    /// 50 %; returns the ids.
    func startAll(version: String, fakes: LoopbackFakes) async throws -> [String] {
        for index in 0..<strategies { fakes.set(Self.query(index), to: 0) }
        var ids: [String] = []
        for index in 0..<strategies {
            let body = #"{"strategy":"\#(Self.name(index))","namespace":"bench","version":"\#(version)"}"#
            let response = try await api("POST", "/v1/rollouts", body: body)
            guard response.status == 201,
                let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
                let id = object["id"] as? String
            else {
                throw BenchError("starting \(Self.name(index)): HTTP \(response.status) "
                    + String(decoding: response.body, as: UTF8.self))
            }
            ids.append(id)
        }
        try await waitUntil("every rollout at 50 %", timeout: .seconds(60), interval: .milliseconds(20)) {
            (0..<strategies).allSatisfy { fakes.weight(Self.name($0)) == 50 }
        }
        return ids
    }

    /// Waits until every rollout in `ids` is final (so the strategies are free for the next rollouts).
    func waitAllFinal(_ ids: [String]) async throws {
        for id in ids {
            try await waitUntil("rollout \(id) to be final", timeout: .seconds(60), interval: .milliseconds(20)) {
                let response = try await self.api("GET", "/v1/rollouts/\(id)")
                let object = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
                return ["RolledBack", "Succeeded", "Failed"].contains(object?["phase"] as? String ?? "")
            }
        }
    }

    /// `sluice rollback bench/NAME --reason … --server … --token-file …`, not started yet.
    func rollbackProcess(_ name: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "rollback", "bench/\(name)", "--reason", "bench trial", "--server", url,
            "--token-file", directory + "/token",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.standardError
        return process
    }

    static func strategy(_ index: Int, fakes: String, interval: Int) -> String {
        """
        apiVersion: sluice.dev/v1
        kind: Strategy
        metadata: {name: \(name(index)), namespace: bench}
        spec:
          target:
            upstreams: {stable: ["127.0.0.1:1"], canary: ["127.0.0.1:2"]}
          traffic:
            caddy: {adminURL: "\(fakes)", handlerID: \(name(index))}
          stages:
            - {name: half, weight: 50, hold: 24h}
            - {name: full, weight: 100}
          analysis:
            interval: \(interval)s
            failureLimit: 1
            providers:
              prom:
                prometheus: {address: "\(fakes)", timeout: 2s}
            checks:
              - {name: error-rate, query: '\(query(index))', max: 0.5}
          rollback:
            automatic: true

        """
    }
}
