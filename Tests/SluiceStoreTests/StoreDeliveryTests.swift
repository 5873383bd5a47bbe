import Foundation
import GRDB
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

@testable import SluiceStore

@Suite struct StoreDeliveryTests {
    @Test(arguments: StoreBackend.all)
    func aCursorStartsEmptyAdvancesNeverMovesBackAndSurvivesAReopen(_ backend: StoreBackend) async throws {
        let (store, reopen) = try await backend.durable()
        let sink = DeliverySink.webhook(Fixtures.strategy().key, url: "https://hooks.example.com/x")
        #expect(try await store.deliveryCursor(sink: sink) == nil)
        try await store.advanceDeliveryCursor(sink: sink, to: 7)
        try await store.advanceDeliveryCursor(sink: sink, to: 3)
        try await store.advanceDeliveryCursor(sink: DeliverySink.kubernetesEvents, to: 2)
        #expect(try await store.deliveryCursor(sink: sink) == 7)
        let reopened = try await reopen()
        #expect(try await reopened.deliveryCursor(sink: sink) == 7)
        #expect(try await reopened.deliveryCursors() == [sink: 7, DeliverySink.kubernetesEvents: 2])
    }

    @Test(arguments: StoreBackend.all)
    func nextEventsReturnsTheBacklogAtOnceAndOtherwiseWaitsForACommit(_ backend: StoreBackend) async throws {
        let store = try await backend.make()
        let strategy = Fixtures.strategy()
        _ = try await store.putStrategy(strategy, now: Fixtures.epoch)
        let rollout = try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }.rollout
        #expect(try await store.nextEvents(EventQuery()).map(\.seq) == [1])
        let waiting = Task { try await store.nextEvents(EventQuery(after: 1)) }
        _ = try await store.record(TickRecord(rolloutID: rollout.id, now: Fixtures.epoch)) { current, _ in
            step(current, to: .progressing, weight: 5, type: .trafficShifted, now: Fixtures.epoch)
        }
        #expect(try await waiting.value.map(\.seq) == [2])
        // Cancelled while waiting: it ends with CancellationError.
        let idle = Task { try await store.nextEvents(EventQuery(after: 2)) }
        idle.cancel()
        await #expect(throws: CancellationError.self) { try await idle.value }
    }

    @Test func upgradingStartsTheWebhooksOfExistingStrategiesAfterTheLogSoNoHistoryIsResent() async throws {
        let path = try makeTemporaryDirectory("sluice-cursor") + "/sluice.db"
        let hook = "https://hooks.example.com/services/T000/B000/secret"
        let strategy = Fixtures.strategy(notifications: [NotificationTarget(webhook: hook, on: ["Promoted"])])
        // A store as the release before delivery cursors left it: one strategy with a webhook, three events.
        let old = try DatabaseQueue(path: path)
        try Store.migrator.migrate(old, upTo: "v3-rollout-listing-indexes")
        try await old.write { db in
            try db.execute(
                sql: """
                    INSERT INTO strategy_revisions (namespace, name, revision, content, created_at)
                    VALUES (?, ?, 1, ?, 0)
                    """, arguments: [strategy.namespace, strategy.name, try StoreJSON.encode(strategy)])
            for _ in 1...3 {
                try db.execute(
                    sql: """
                        INSERT INTO events (time, rollout, namespace, name, type, content)
                        VALUES (0, 'r-1', ?, ?, 'RolloutStarted', '{}')
                        """, arguments: [strategy.namespace, strategy.name])
            }
        }
        try old.close()
        let store = try Store(path: path)
        #expect(try await store.deliveryCursor(sink: DeliverySink.webhook(strategy.key, url: hook)) == 3)
        #expect(try await store.deliveryCursor(sink: DeliverySink.kubernetesEvents) == nil)
    }
}
