import Foundation
import Logging
import SluiceController
import SluiceCore
import SluiceHTTP
import SluiceRuntimeTestSupport
import SluiceStore
import SluiceTestSupport
import Testing

/// Webhooks are delivered at least once: a delivery cursor per webhook in the store, replayed after a restart.
@Suite struct DeliveryTests {
    static let hook = "https://hooks.example.com/services/T000/B000/secret"

    @Test func anEventCommittedBeforeACrashIsDeliveredAfterTheRestart() async throws {
        let directory = try makeTemporaryDirectory("sluice-delivery")
        let strategy = Fixtures.strategy(notifications: [NotificationTarget(webhook: Self.hook)])
        let first = try Store(path: directory + "/sluice.db")
        _ = try await first.putStrategy(strategy, now: Fixtures.epoch)
        // The receiver never answers: the process dies with the first delivery in flight.
        let hanging = HangingWebhookClient()
        let (controller, running) = launch(first, http: hanging)
        _ = try await controller.startRollout(strategy: strategy.key, version: "v2", actor: "ci", supersede: false)
        try await waitUntil("the first delivery to be in flight", interval: .milliseconds(2)) { hanging.calls >= 1 }
        running.cancel()
        _ = try? await running.value

        // A new process on the same database: the event goes out now, with its seq in the header.
        let store = try Store(path: directory + "/sluice.db")
        let receiver = RecordingWebhookClient()
        let (_, again) = launch(store, http: receiver)
        defer { again.cancel() }
        try await waitUntil("RolloutStarted to be delivered", interval: .milliseconds(2)) {
            !receiver.received.isEmpty
        }
        let request = try #require(receiver.received.first)
        let payload = try JSONDecoder().decode(EventPayload.self, from: request.body ?? Data())
        #expect(payload.seq == 1 && payload.type == "RolloutStarted")
        #expect(request.headers.contains { $0.name == "X-Sluice-Seq" && $0.value == "1" })
        let sink = DeliverySink.webhook(strategy.key, url: Self.hook)
        try await waitUntil("the cursor to pass it", interval: .milliseconds(2)) {
            try await store.deliveryCursor(sink: sink) ?? 0 >= 1
        }
    }

    @Test func aReceiverThatStaysDownIsSkippedAfterItsRetriesAndTheNextEventStillGoesOut() async throws {
        let strategy = Fixtures.strategy(notifications: [NotificationTarget(webhook: Self.hook)])
        var options = Scenario.fastOptions
        options.notificationAttempts = 2
        // Both attempts at the first event fail; everything after that is accepted.
        let scenario = try await Scenario(
            strategies: [strategy], webhooks: RecordingWebhookClient(statuses: [503, 503]), options: options)
        defer { Task { await scenario.stop() } }
        let rollout = try await scenario.start()
        _ = try await scenario.command(rollout.id, .pause(actor: "oncall"))
        let events = try await scenario.store.events(EventQuery(rollout: rollout.id))
        let sink = DeliverySink.webhook(strategy.key, url: Self.hook)
        try await waitUntil("every event to be handled", interval: .milliseconds(2)) {
            try await scenario.store.deliveryCursor(sink: sink) == events.last?.seq
        }
        let seqs = try scenario.webhooks.received.map {
            try JSONDecoder().decode(EventPayload.self, from: $0.body ?? Data()).seq
        }
        // The first event twice (both refused), then the others once each, in order.
        #expect(seqs == [events[0].seq] + events.map(\.seq))
        #expect(events.count >= 2)
        #expect(scenario.controller.snapshot().notificationsFailed == 1)
        #expect(scenario.controller.snapshot().notificationsDelivered == events.count - 1)
    }

    private func launch(
        _ store: Store, http: any HTTPClient, options: Controller.Options = Scenario.fastOptions
    ) -> (Controller, Task<Void, any Error>) {
        let controller = Controller(
            store: store, providers: FakeProviderFactory(), clock: ManualClock(), http: http,
            logger: Logger(label: "delivery", factory: { _ in SwiftLogNoOpLogHandler() }), options: options)
        return (controller, Task { try await controller.run() })
    }
}

/// A webhook receiver that takes every request and never answers (until the caller gives up).
final class HangingWebhookClient: HTTPClient, @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    var calls: Int { lock.withLock { count } }

    func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        lock.withLock { count += 1 }
        try await Task.sleep(for: .seconds(3600))  // the hang itself; cancellation ends it
        return HTTPResponse(status: 200)
    }
}
