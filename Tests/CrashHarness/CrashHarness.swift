import Foundation
import Logging
import ServiceLifecycle
import SluiceController
import SluiceCore
import SluiceHTTP
import SluiceProviders
import SluiceStore

/// The controller in its own process for the crash test (Tests/SluiceControllerTests/CrashTests.swift):
/// the real controller and store, the real web metric provider over CurlClient, and a router that talks
/// to the loopback fakes of Tests/Support/servers/crash_fakes.py. The test SIGKILLs it at random moments
/// and starts it again; each start resumes from the store. It keeps `waves` rollouts going one after the
/// other for each of `strategies` strategies (odd ones breach at 50 %), each with a webhook on the fakes'
/// receiver, and exits 0 once every one is final with no effect pending and the receiver has every subscribed
/// event (or 10 s later: the test says which never arrived).
///
/// Usage: sluice-crash-harness DB FAKES_URL STRATEGIES WAVES INTERVAL_MS HOLD_MS
/// DB is a SQLite file, or a `postgres://` URL whose password is in the file `$SLUICE_CRASH_DB_PASSWORD_FILE`.
@main
struct CrashHarness {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 7, let count = Int(arguments[3]), let waves = Int(arguments[4]),
            let interval = Int(arguments[5]), let hold = Int(arguments[6])
        else {
            FileHandle.standardError.write(
                Data("usage: sluice-crash-harness DB FAKES_URL STRATEGIES WAVES INTERVAL_MS HOLD_MS\n".utf8))
            exit(64)
        }
        let fakes = arguments[2]
        var logger = Logger(label: "crash-harness")
        logger.logLevel = .warning
        let store = try await openStore(arguments[1], logger: logger)
        let strategies = (0..<count).map { index in
            strategy(index, fakes: fakes, interval: .milliseconds(interval), hold: .milliseconds(hold))
        }
        for strategy in strategies {
            _ = try await store.putStrategy(strategy, now: SystemClock().now())
        }
        let client = try CurlClient()
        let controller = Controller(
            store: store, providers: LoopbackProviders(fakes: fakes, client: client), http: client, logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [controller], gracefulShutdownSignals: [.sigterm], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            tasks.addTask {
                try await keepRolloutsGoing(
                    strategies, waves: waves, store: store, controller: controller, fakes: fakes, client: client)
                print("ALL FINAL")
                await group.triggerGracefulShutdown()
            }
            try await tasks.waitForAll()
        }
    }

    /// The SQLite store at `location`, or the PostgreSQL store when it is a `postgres://` URL.
    static func openStore(_ location: String, logger: Logger) async throws -> any RolloutStore {
        guard location.hasPrefix("postgres://") else { return try Store(path: location) }
        let passwordFile = ProcessInfo.processInfo.environment["SLUICE_CRASH_DB_PASSWORD_FILE"]
        return try await PostgresStore.open(
            try PostgresConfiguration.parse(url: location, passwordFile: passwordFile), logger: logger)
    }

    /// Starts the next wave of each strategy whose latest rollout is final, until all waves are final.
    static func keepRolloutsGoing(
        _ strategies: [Strategy], waves: Int, store: any RolloutStore, controller: Controller, fakes: String,
        client: any HTTPClient
    ) async throws {
        var finalSince: ContinuousClock.Instant?
        while true {
            var done = true
            for strategy in strategies {
                let rollouts = try await store.rollouts(strategy: strategy.key)
                if let latest = rollouts.first, !latest.phase.isTerminal {
                    done = false
                } else if rollouts.count < waves {
                    done = false
                    _ = try await controller.startRollout(
                        strategy: strategy.key, version: "v\(rollouts.count + 1)", actor: "crash-test", supersede: false
                    )
                }
            }
            if done, try await store.rolloutsWithPendingEffects().isEmpty {
                // The webhooks get 10 s to catch up; the test reports any event that never arrived.
                if try await webhooksCaughtUp(strategies, store, fakes: fakes, client: client)
                    || ContinuousClock.now - (finalSince ?? ContinuousClock.now) > .seconds(10)
                {
                    return
                }
                finalSince = finalSince ?? ContinuousClock.now
            }
            try await Task.sleep(for: .milliseconds(50))  // polling the store for finished waves
        }
    }

    /// Whether the fakes' receiver has every event each strategy's webhook subscribes to.
    static func webhooksCaughtUp(
        _ strategies: [Strategy], _ store: any RolloutStore, fakes: String, client: any HTTPClient
    )
        async throws -> Bool
    {
        struct Received: Decodable { var received: [Int64] }
        for strategy in strategies {
            let wanted = try await store.events(EventQuery(strategy: strategy.key, limit: 1_000_000))
                .filter { subscribed.contains($0.type) }.map(\.seq)
            let response = try await client.execute(
                HTTPRequest(url: "\(fakes)/webhook/\(strategy.name)", timeout: .seconds(2), retry: .none))
            let received = try JSONDecoder().decode(Received.self, from: response.body).received
            if !Set(wanted).isSubset(of: received) { return false }
        }
        return true
    }

    /// The event types the strategies' webhooks subscribe to (a subset, so the filter is exercised too).
    static let subscribed: [EventType] = [
        .rolloutStarted, .stageStarted, .trafficShifted, .checkBreached, .rollbackStarted, .rolledBack, .promoted,
    ]

    static func strategy(_ index: Int, fakes: String, interval: Duration, hold: Duration) -> Strategy {
        let name = "svc-\(index)"
        let breachAt = index % 2 == 1 ? 50 : -1
        return Strategy(
            name: name, target: .upstreams(stable: ["127.0.0.1:1"], canary: ["127.0.0.1:2"]),
            // The router is the loopback fake (see LoopbackProviders); the route value only names it.
            traffic: .caddy(adminURL: fakes, handlerID: name),
            stages: [5, 25, 50, 100].map { Stage(name: "w\($0)", weight: $0, hold: hold) },
            analysis: Analysis(
                interval: interval, failureLimit: 1, noDataLimit: 20, onNoData: .pause,
                providers: [
                    "fake": .web(
                        WebConfig(
                            url: "\(fakes)/metrics/\(name)?breachAt=\(breachAt)", jsonPath: "value",
                            timeout: .seconds(2)))
                ],
                checks: [Check(name: "error-rate", provider: "fake", query: "error-rate", max: 0.05)]),
            notifications: [NotificationTarget(webhook: "\(fakes)/webhook/\(name)", on: subscribed.map(\.rawValue))])
    }
}

/// Real web metric providers, the loopback router, and the pools workload.
struct LoopbackProviders: ProviderFactory {
    let fakes: String
    let client: any HTTPClient

    func providers(for strategy: Strategy, rollout: Rollout) throws -> RolloutProviders {
        RolloutProviders(
            metrics: try MetricProviderRegistry(client: client).makeProviders(for: strategy.analysis),
            router: LoopbackRouter(url: "\(fakes)/router/\(strategy.name)", client: client), workload: PoolsWorkload())
    }
}

/// A router whose weight lives at the crash fakes' `/router/NAME`.
struct LoopbackRouter: TrafficRouter {
    let url: String
    let client: any HTTPClient

    struct State: Decodable { var weight: Int }

    func setCanaryWeight(_ weight: Int) async throws {
        try check(await send("PUT", url, body: Data(String(weight).utf8)))
    }

    func canaryWeight() async throws -> Int {
        let response = try await send("GET", url, body: nil)
        try check(response)
        return try JSONDecoder().decode(State.self, from: response.body).weight
    }

    func finalize() async throws {
        try check(await send("POST", url + "/finalize", body: Data()))
    }

    private func send(_ method: String, _ url: String, body: Data?) async throws -> HTTPResponse {
        try await client.execute(
            HTTPRequest(
                method: method, url: url, body: body, timeout: .seconds(2), connectTimeout: .seconds(1), retry: .none))
    }

    private func check(_ response: HTTPResponse) throws {
        guard (200..<300).contains(response.status) else {
            throw ProviderError(
                .badResponse, provider: "loopback-router", "HTTP \(response.status) from \(url)",
                status: response.status)
        }
    }
}
