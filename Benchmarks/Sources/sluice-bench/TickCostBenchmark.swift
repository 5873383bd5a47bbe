import ArgumentParser
import Foundation
import Logging
import SluiceController
import SluiceCore
import SluiceHTTP
import SluiceProviders
import SluiceStore
import SluiceTestSupport
import Tracing

/// `sluice-bench tick` (issue #11, point 4): one rollout driven for exactly `--ticks` ticks, in process, by the real
/// controller with the real SQLite store, the real Prometheus provider and Caddy router over CurlClient, against
/// `LoopbackFakes` in a child process (`sluice-bench fakes`, so callgrind counts only this process). A warp clock
/// makes every wait for the next tick return at once (time jumps to the deadline), so the ticks run back to back
/// and a run is deterministic. Meant to be run under callgrind twice (e.g. 1,000 and 200 ticks): the difference,
/// divided by 800, is the cost of one tick without the setup. BENCHMARKS.md has the exact commands.
/// Trace context is on, as `sluice serve` has it by default (`traceContext: true`, no `otlp`: a `W3CTracer` without a
/// sink on the controller and the HTTP client), and the rollout is started inside a server span as the API's
/// `RequestContextMiddleware` makes one, so every tick continues the start's stored `traceparent` and every call
/// carries one, as they do in `sluice serve`.
struct TickCostBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tick",
        abstract: "Drive one rollout for exactly N ticks in process (for callgrind's instructions per tick).")

    @Option(help: "Ticks to run; the stage's hold is longer, so every tick is a steady-state one.")
    var ticks = 1000

    @Option(help: "Checks per tick (Prometheus queries), as in issue #11's scale setup.")
    var checks = 2

    @Option(help: """
        URL of running fakes (`sluice-bench fakes --url-file F`); default: start them as a child process. Under \
        valgrind pass this: Foundation's Process cannot spawn there (EBADF).
        """)
    var fakesURL: String?

    @Option(help: """
        W3C trace context on every tick and outbound call, as `sluice serve` has it by default (`traceContext:`); \
        `--trace-context false` measures a tick without it (`traceContext: false`).
        """)
    var traceContext = true

    func run() async throws {
        guard ticks > 0, checks > 0 else { throw ValidationError("--ticks and --checks must be > 0") }
        let directory = try makeTemporaryDirectory("sluice-bench-tick")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let child = try fakesURL == nil ? startFakes(directory: directory) : nil
        defer { child?.stop() }
        let fakes = try fakesURL ?? child!.url

        var logger = Logger(label: "sluice-bench.tick")
        logger.logLevel = .error
        let clock = WarpClock(sleeps: ticks)
        let store = try Store(path: directory + "/sluice.db")
        let strategy = Self.strategy(fakes: fakes, checks: checks, ticks: ticks)
        _ = try await store.putStrategy(strategy, now: clock.now())
        // As `sluice serve` builds them (SluiceServer.make): one tracer on the controller and on the HTTP client.
        let tracer = traceContext ? W3CTracer() : nil
        let client = try CurlClient(instrument: tracer)
        let controller = Controller(
            store: store, providers: TickProviders(client: client), clock: clock, http: nil, logger: logger,
            tracer: tracer)
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await controller.run() }
            try await Self.inRequestSpan(tracer) {
                _ = try await controller.startRollout(
                    strategy: strategy.key, version: "v2", actor: "sluice-bench", supersede: false)
            }
            await clock.finished()
            group.cancelAll()
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        let snapshot = controller.snapshot()
        guard snapshot.ticks == ticks else {
            throw BenchError("expected \(ticks) ticks, the controller counted \(snapshot.ticks)")
        }
        print(String(format: "sluice-bench tick: %d ticks, %d checks each, %.1f µs per tick (wall, with setup)",
            snapshot.ticks, checks, elapsed.seconds * 1e6 / Double(ticks))
            + ", trace context \(traceContext ? "on" : "off")")
    }

    /// `body` in a server span as the API runs a request's handler (a new trace: the CLI sends no `traceparent`),
    /// so the rollout stores its start's `traceparent`; just `body` without a tracer.
    static func inRequestSpan(_ tracer: W3CTracer?, _ body: () async throws -> Void) async throws {
        guard let tracer else { return try await body() }
        try await tracer.withSpan("POST /v1/rollouts", context: .topLevel, ofKind: .server) { _ in try await body() }
    }

    /// An upstreams rollout through the Caddy router at the fakes, one stage at 50 % held longer than `ticks`
    /// intervals, `checks` Prometheus checks that pass.
    static func strategy(fakes: String, checks: Int, ticks: Int) -> Strategy {
        let interval = Duration.seconds(10)
        return Strategy(
            name: "tick", namespace: "bench", target: .upstreams(stable: ["127.0.0.1:1"], canary: ["127.0.0.1:2"]),
            traffic: .caddy(adminURL: fakes, handlerID: "tick"),
            stages: [
                Stage(name: "half", weight: 50, hold: interval * (ticks + 10)), Stage(name: "full", weight: 100),
            ],
            analysis: Analysis(
                interval: interval, failureLimit: 1,
                providers: ["prom": .prometheus(PrometheusConfig(address: fakes, timeout: .seconds(2)))],
                checks: (0..<checks).map {
                    Check(name: "check-\($0)", provider: "prom", query: "bench_tick_check_\($0)", max: 0.5)
                }))
    }

    /// `sluice-bench fakes` as a child process; valgrind does not follow children, so it is not counted.
    private func startFakes(directory: String) throws -> FakesChild {
        let urlFile = directory + "/fakes-url"
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let process = try ManagedProcess(
            name: "fakes", executable: executable, arguments: ["fakes", "--url-file", urlFile], directory: directory,
            installHint: "swift build -c release --package-path Benchmarks")
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let data = FileManager.default.contents(atPath: urlFile), !data.isEmpty {
                return FakesChild(process: process, url: String(decoding: data, as: UTF8.self))
            }
            guard process.isRunning else { throw BenchError("fakes exited: \(process.logTail())") }
            usleep(10_000)  // polls for the child's URL file, bounded by the deadline
        }
        process.stop()
        throw BenchError("the fakes did not start within 30 s: \(process.logTail())")
    }
}

struct FakesChild {
    let process: ManagedProcess
    let url: String
    func stop() { process.stop() }
}

/// The real metric providers and router of a strategy, over `client`; the pools workload. Built as `sluice serve`'s
/// `LiveProviderFactory` builds them: one `MetricProviderRegistry` for the process (it reads the environment once and
/// keeps the header files' cache across ticks; one made every tick read the whole environment every tick, ~350 k
/// instructions that `sluice serve` does not spend), and the router's calls counted.
struct TickProviders: ProviderFactory {
    let client: any HTTPClient
    let metrics: MetricProviderRegistry
    let routerMetrics = RouterMetrics()

    init(client: any HTTPClient) {
        self.client = client
        metrics = MetricProviderRegistry(client: client)
    }

    func providers(for strategy: Strategy, rollout: Rollout) throws -> RolloutProviders {
        let context = RouterContext(
            namespace: strategy.namespace, pools: rollout.pools, http: client, environment: [:])
        let router = try RouterRegistry.router(for: strategy.traffic, context: context)
        return RolloutProviders(
            metrics: try metrics.makeProviders(for: strategy.analysis),
            router: routerMetrics.counting(router, kind: strategy.traffic.kind),
            workload: PoolsWorkload())
    }
}

/// A clock whose waits return at once, moving time to their deadline, for the first `sleeps` waits; the next
/// wait parks until cancelled and reports `finished()`. So the controller ticks exactly `sleeps` times.
final class WarpClock: SluiceClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current = SystemClock().now()
    private var remaining: Int
    private var done = false
    private var waiter: CheckedContinuation<Void, Never>?

    init(sleeps: Int) { remaining = sleeps }

    func now() -> Timestamp { lock.withLock { current } }

    func sleep(until deadline: Timestamp) async throws {
        let proceed: Bool = lock.withLock {
            guard remaining > 0 else { return false }
            remaining -= 1
            if deadline > current { current = deadline }
            return true
        }
        if proceed { return }
        let waiter: CheckedContinuation<Void, Never>? = lock.withLock {
            done = true
            defer { self.waiter = nil }
            return self.waiter
        }
        waiter?.resume()
        try await Task.sleep(for: .seconds(86_400))  // parked: the run ends by cancelling the controller
    }

    /// Bounds on calls and backoffs run on real time: they are not the waits between ticks that the count is of, and
    /// the loopback fakes answer long before any bound.
    func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }

    /// Returns once the last allowed wait has passed and the next one has begun.
    func finished() async {
        await withCheckedContinuation { continuation in
            let resumeNow: Bool = lock.withLock {
                if done { return true }
                waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }
}
