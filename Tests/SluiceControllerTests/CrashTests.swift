import Foundation
import Logging
import SluiceCore
import SluiceHTTP
import SluiceStore
import SluiceTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The controller in its own process (Tests/CrashHarness), SIGKILLed at random moments and started
/// again, against loopback fakes (Tests/Support/servers/crash_fakes.py). Afterwards every rollout is
/// final, the event log has no gap and no duplicate, the fake router holds the weight the log says, and every
/// committed event of a subscribed type reached the strategy's webhook (the fakes' receiver) at least once.
@Suite struct CrashTests {
    static let strategies = 10
    static let waves = 3
    static let kills = 50

    /// On each store backend: a SQLite file, and a PostgreSQL database (where a kill also drops the connection in
    /// the middle of a transaction, which the server rolls back).
    @Test(arguments: ["sqlite", "postgres"])
    func theControllerSurvivesRepeatedSIGKILLs(_ backend: String) async throws {
        let seed =
            UInt64(ProcessInfo.processInfo.environment["SLUICE_CRASH_SEED"] ?? "")
            ?? UInt64.random(in: 1...UInt64(UInt32.max))
        print("crash test seed: \(seed) (set SLUICE_CRASH_SEED=\(seed) to repeat it)")
        var random = SplitMix64(seed: seed)
        let harness = try harnessBinary()
        let directory = try makeTemporaryDirectory("sluice-crash")
        let fakes = try await CrashFakes(directory: directory)
        defer { fakes.process.stop() }
        var database = directory + "/sluice.db"
        var environment: [String: String]?
        var openStore: @Sendable () async throws -> any RolloutStore = { [database] in try Store(path: database) }
        if backend == "postgres" {
            let cluster = try await PostgresCluster.shared()
            let name = try await cluster.createDatabase()
            database = cluster.url(database: name)
            environment = ProcessInfo.processInfo.environment
            environment?["SLUICE_CRASH_DB_PASSWORD_FILE"] = cluster.passwordFile
            let configuration = try PostgresConfiguration.parse(url: database, passwordFile: cluster.passwordFile)
            openStore = {
                try await PostgresStore.open(
                    configuration, logger: Logger(label: "crash-test", factory: { _ in SwiftLogNoOpLogHandler() }))
            }
        }
        // 100 ms interval, 1 s holds: long enough that 50 kills land in work in progress even on a quiet machine.
        let arguments = [database, fakes.baseURL, String(Self.strategies), String(Self.waves), "100", "1000"]

        var killed = 0
        var finished = false
        var lives = 0
        while !finished {
            lives += 1
            let process = try ManagedProcess(
                name: "harness-\(lives)", executable: harness, arguments: arguments, environment: environment,
                directory: directory, installHint: "swift build (it builds the sluice-crash-harness test executable)")
            defer { process.stop(signal: SIGKILL) }
            if killed < Self.kills {
                // A random moment in this life; the harness may also finish first.
                let moment = Duration.milliseconds(Int64(random.next() % 300) + 20)
                let deadline = ContinuousClock.now + moment
                while process.isRunning && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))  // the random kill moment, not a wait for a condition
                }
                if process.isRunning {
                    kill(process.pid, SIGKILL)
                    process.process.waitUntilExit()
                    killed += 1
                    if killed == Self.kills {
                        // Every kill must have hit work in progress, or the rollouts are too short for this test.
                        let unfinished = try await openStore().rollouts().filter { !$0.phase.isTerminal }
                        print("crash test: \(unfinished.count) rollouts unfinished at the last kill")
                        #expect(!unfinished.isEmpty, "every rollout was final before the last kill")
                    }
                    continue
                }
            } else {
                try await waitUntil("the harness to finish every rollout", timeout: .seconds(120)) {
                    !process.isRunning
                }
            }
            #expect(process.process.terminationStatus == 0, "harness failed: \(process.logTail())")
            finished = process.logTail().contains("ALL FINAL")
            if process.process.terminationStatus != 0 { break }
        }
        print("crash test: \(killed) SIGKILLs over \(lives) lives")
        #expect(killed >= Self.kills, "the rollouts finished after only \(killed) kills; make them longer")

        let store = try await openStore()
        let rollouts = try await store.rollouts()
        #expect(rollouts.count == Self.strategies * Self.waves)
        let unfinished = rollouts.filter { !$0.phase.isTerminal }.map { "\($0.id) \($0.phase)" }
        #expect(unfinished.isEmpty)
        #expect(try await store.rolloutsWithPendingEffects().isEmpty)
        let events = try await store.events(EventQuery(limit: 1_000_000))
        #expect(events.map(\.seq) == Array(1...Int64(events.count)), "the log has a gap or a duplicate")

        for rollout in rollouts {
            let own = events.filter { $0.rollout == rollout.id }
            let breaches = (Int(rollout.strategy.name.dropFirst(4)) ?? 0) % 2 == 1
            #expect(rollout.phase == (breaches ? .rolledBack : .succeeded), "\(rollout.id)")
            // Each step happened once: restarts neither lose nor repeat a decision.
            var seen = Set<String>()
            for event in own where event.type != .effectFailed && event.type != .checkNoData {
                let key = "\(event.type) \(event.stage ?? -1)"
                #expect(seen.insert(key).inserted, "\(rollout.id): \(key) twice")
            }
            #expect(own.first?.type == .rolloutStarted)
            #expect(own.last?.type == (breaches ? .rolledBack : .promoted), "\(rollout.id)")
        }
        // The fake router holds what the log says: the weight of each strategy's last event with one.
        for index in 0..<Self.strategies {
            let name = "svc-\(index)"
            let logged = events.last { $0.strategy.name == name && $0.weight != nil }?.weight
            let state = try await fakes.router(name)
            #expect(state.weight == logged, "\(name): router at \(state.weight), log says \(logged ?? -1)")
            #expect(state.weight == 0)
        }
        // Webhooks are at least once: every subscribed event arrived, nothing else did, first arrivals in order.
        var redelivered = 0
        for index in 0..<Self.strategies {
            let key = StrategyKey(namespace: "default", name: "svc-\(index)")
            let subscribed = Set(try #require(try await store.strategy(key)?.strategy.notifications.first).on)
            let wanted = events.filter { $0.strategy == key && subscribed.contains($0.type.rawValue) }.map(\.seq)
            let hook = try await fakes.webhook(key.name)
            let missing = Set(wanted).subtracting(hook.received).sorted()
            #expect(missing.isEmpty, "\(key.name): events \(missing) never reached the webhook")
            #expect(Set(hook.received).isSubset(of: wanted), "\(key.name): got events it did not subscribe to")
            var seen = Set<Int64>()
            let firsts = hook.received.filter { seen.insert($0).inserted }
            #expect(firsts == firsts.sorted(), "\(key.name): first deliveries out of seq order")
            #expect(hook.mismatched == 0, "\(key.name): X-Sluice-Seq differed from the body's seq")
            redelivered += hook.received.count - firsts.count
        }
        print("crash test: \(redelivered) webhook deliveries repeated after a kill (receivers de-duplicate by seq)")
    }

    private func harnessBinary() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        let candidates = [
            environment["SLUICE_CRASH_HARNESS"],
            environment["SLUICE_BIN"].map {
                URL(fileURLWithPath: $0).deletingLastPathComponent().path + "/sluice-crash-harness"
            },
            repositoryRoot() + "/.build/debug/sluice-crash-harness",
        ].compactMap { $0 }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw SupportError("sluice-crash-harness not found (looked at \(candidates)); build it with `swift build`")
        }
        return found
    }
}

/// crash_fakes.py on a free loopback port.
struct CrashFakes {
    let process: ManagedProcess
    let baseURL: String

    struct RouterState: Decodable {
        var weight: Int
        var history: [Int]
        var finalized: Int
    }

    init(directory: String) async throws {
        let port = try freePort()
        let ready = directory + "/fakes.ready"
        process = try ManagedProcess(
            name: "crash-fakes", executable: toolPath("python3"),
            arguments: [repositoryRoot() + "/Tests/Support/servers/crash_fakes.py", String(port), ready],
            directory: directory, installHint: "scripts/setup (creates .tools/venv with python3)")
        baseURL = "http://127.0.0.1:\(port)"
        let process = process
        try await waitUntil("the crash fakes on port \(port)", timeout: .seconds(15)) {
            guard process.isRunning else { throw SupportError("crash fakes exited: \(process.logTail())") }
            return FileManager.default.fileExists(atPath: ready)
        }
    }

    struct WebhookState: Decodable {
        var received: [Int64]
        var mismatched: Int
    }

    func webhook(_ name: String) async throws -> WebhookState {
        let response = try await CurlClient().execute(
            HTTPRequest(url: "\(baseURL)/webhook/\(name)", timeout: .seconds(5)))
        return try JSONDecoder().decode(WebhookState.self, from: response.body)
    }

    func router(_ name: String) async throws -> RouterState {
        let response = try await CurlClient().execute(
            HTTPRequest(url: "\(baseURL)/router/\(name)", timeout: .seconds(5)))
        return try JSONDecoder().decode(RouterState.self, from: response.body)
    }
}
