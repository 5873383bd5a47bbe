import Logging
import SluiceController
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceStore
import SluiceTestSupport

/// The real controller on a real (file) store, with a manual clock and fake providers. A test starts
/// rollouts, sends commands, and advances the clock one analysis interval at a time; `settle()` waits
/// until every driver sleeps on the clock again and no effect runs, so each step is deterministic.
final class Scenario: @unchecked Sendable {
    let clock = ManualClock()
    let factory = FakeProviderFactory()
    let directory: String
    let store: Store
    let webhooks: RecordingWebhookClient
    let options: Controller.Options
    private(set) var controller: Controller
    private var running: Task<Void, any Error>

    init(
        strategies: [Strategy] = [Fixtures.strategy()], webhooks: RecordingWebhookClient = .init(),
        options: Controller.Options = Scenario.fastOptions
    ) async throws {
        directory = try makeTemporaryDirectory("sluice-scenario")
        store = try Store(path: directory + "/sluice.db")
        self.webhooks = webhooks
        self.options = options
        for strategy in strategies {
            _ = try await store.putStrategy(strategy, now: clock.now())
        }
        (controller, running) = Self.launch(store, factory, clock, webhooks, options)
    }

    /// Options for tests: quick webhook retries (in real time). The bounds and the store's backoff run on the
    /// manual clock: a call a test holds at a gate times out only when the test advances the clock past its bound.
    static var fastOptions: Controller.Options {
        var options = Controller.Options()
        options.observeTimeout = .seconds(60)
        options.effectTimeout = .seconds(300)
        options.supersedeTimeout = .seconds(10)
        options.storeRetryDelay = .milliseconds(20)
        options.notificationBackoff = .milliseconds(5)
        return options
    }

    private static func launch(
        _ store: Store, _ factory: FakeProviderFactory, _ clock: ManualClock, _ http: RecordingWebhookClient,
        _ options: Controller.Options
    ) -> (Controller, Task<Void, any Error>) {
        let controller = Controller(
            store: store, providers: factory, clock: clock, http: http,
            logger: Logger(label: "scenario", factory: { _ in SwiftLogNoOpLogHandler() }), options: options)
        return (controller, Task { try await controller.run() })
    }

    func world(_ name: String = "checkout") -> FakeWorld {
        factory.world(StrategyKey(namespace: "default", name: name))
    }

    func start(_ name: String = "checkout", version: String = "v2", supersede: Bool = false) async throws -> Rollout {
        let rollout = try await controller.startRollout(
            strategy: StrategyKey(namespace: "default", name: name), version: version, actor: "ci", supersede: supersede
        )
        try await settle()
        return rollout
    }

    func command(_ id: String, _ command: Command) async throws -> Rollout {
        let rollout = try await controller.command(rolloutID: id, command)
        try await settle()
        return rollout
    }

    /// Waits until the controller is quiescent: every driver asleep on the clock, no effect running.
    func settle() async throws {
        try await waitUntil("the controller to settle", timeout: .seconds(20), interval: .milliseconds(2)) {
            let snapshot = self.controller.snapshot()
            return snapshot.running && snapshot.runningEffectBatches == 0
                && self.clock.sleepers == snapshot.drivenRollouts
        }
    }

    /// Advances the clock by `interval`, `times` times, settling after each step.
    func tick(_ times: Int = 1, interval: Duration = .seconds(10)) async throws {
        for _ in 0..<times {
            clock.advance(by: interval)
            try await settle()
        }
    }

    /// Advances the clock one interval, then waits until the controller settles or `hung()` says a call
    /// hangs at a gate on purpose.
    func tick(orUntil hung: @escaping @Sendable () -> Bool, interval: Duration = .seconds(10)) async throws {
        clock.advance(by: interval)
        try await waitUntil("a tick", interval: .milliseconds(2)) {
            let snapshot = self.controller.snapshot()
            return hung() || (snapshot.runningEffectBatches == 0 && self.clock.sleepers == snapshot.drivenRollouts)
        }
    }

    /// Ticks until `id` is in a terminal phase; fails after `limit` ticks.
    @discardableResult
    func tickUntilFinal(_ id: String, limit: Int = 60) async throws -> Rollout {
        for _ in 0..<limit {
            if let rollout = try await store.rollout(id), rollout.phase.isTerminal { return rollout }
            try await tick()
        }
        throw SupportError("rollout \(id) is not final after \(limit) ticks: \(try await phase(id))")
    }

    func phase(_ id: String) async throws -> Phase? { try await store.rollout(id)?.phase }

    func eventTypes(_ id: String? = nil) async throws -> [String] {
        try await store.events(EventQuery(rollout: id)).map(\.type.rawValue)
    }

    /// Stops the controller as SIGTERM would (cancellation) and starts a new one on the same store.
    func restart() async throws {
        running.cancel()
        _ = await running.result
        (controller, running) = Self.launch(store, factory, clock, webhooks, options)
        try await settle()
    }

    func stop() async {
        running.cancel()
        _ = await running.result
    }
}
