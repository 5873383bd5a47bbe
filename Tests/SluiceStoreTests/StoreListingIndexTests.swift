import Foundation
import GRDB
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

@testable import SluiceStore

/// The indexes the rollout listings page on (migration `v3-rollout-listing-indexes`): the page queries
/// seek them instead of scanning and sorting, and a store of the previous schema migrates to them.
@Suite struct StoreListingIndexTests {
    static let keys = ["a", "b", "c"].map { StrategyKey(namespace: "web", name: $0) }

    /// 40 rollouts of three strategies in turn, cycling through the terminal phases; every fourth second
    /// holds two, so that pages break ties on the id.
    static func seed(_ store: Store) async throws {
        for key in keys {
            _ = try await store.putStrategy(
                Fixtures.strategy(name: key.name, namespace: key.namespace), now: Fixtures.epoch)
        }
        let phases: [Phase] = [.succeeded, .rolledBack, .failed]
        for index in 0..<40 {
            let second = Int64(index - index / 4)
            let now = Timestamp(
                millisecondsSinceEpoch: Fixtures.epoch.millisecondsSinceEpoch + second * 1000)
            _ = try await StoreCountsTests.rollout(store, keys[index % 3], phases[index % 3], now: now)
        }
    }

    /// Every id a listing returns, walked in pages of `size` through the cursor.
    static func walk(_ store: Store, strategy: StrategyKey? = nil, phase: Phase? = nil, size: Int)
        async throws
        -> [String]
    {
        var ids: [String] = []
        while true {
            let page = try await store.rollouts(
                after: ids.last, strategy: strategy, phases: phase.map { [$0] }, limit: size)
            ids += page.map(\.id)
            if page.count < size { return ids }
        }
    }

    struct PlanCase: Sendable, CustomTestStringConvertible {
        var cursor: Bool
        var strategy: StrategyKey?
        var phase: Phase?
        var index: String
        var testDescription: String {
            "cursor: \(cursor), strategy: \(strategy.map { "\($0)" } ?? "-"), phase: \(phase?.rawValue ?? "-")"
        }
    }

    @Test(arguments: [
        PlanCase(cursor: false, strategy: nil, phase: nil, index: "rollouts_by_creation"),
        PlanCase(cursor: true, strategy: nil, phase: nil, index: "rollouts_by_creation"),
        PlanCase(cursor: false, strategy: keys[1], phase: nil, index: "rollouts_by_strategy"),
        PlanCase(cursor: true, strategy: keys[1], phase: nil, index: "rollouts_by_strategy"),
        PlanCase(cursor: false, strategy: nil, phase: .failed, index: "rollouts_by_phase"),
        PlanCase(cursor: true, strategy: nil, phase: .failed, index: "rollouts_by_phase"),
        PlanCase(cursor: true, strategy: keys[2], phase: .failed, index: "rollouts_by_strategy"),
    ])
    func aPageSeeksAnIndexInListingOrder(_ plan: PlanCase) async throws {
        let store = try Store.inMemory()
        try await Self.seed(store)
        let cursor = plan.cursor ? "r-20261124-0020" : nil
        let details = try await store.read("explain a page") { db in
            let page = try Store.rolloutPage(
                db, after: cursor, strategy: plan.strategy, phases: plan.phase.map { [$0] }, limit: 10)
            let plan = try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + page.sql, arguments: page.arguments)
            return plan.map { $0["detail"] as String }
        }
        #expect(
            details.contains {
                $0.hasPrefix("SEARCH rollouts USING INDEX \(plan.index)")
                    || $0.hasPrefix("SCAN rollouts USING INDEX \(plan.index)")
            }, "\(details)")
        #expect(!details.contains { $0.contains("TEMP B-TREE") }, "no sort: \(details)")
        if plan.cursor {
            #expect(
                details.contains { $0.contains("(created_at,id)<(?,?)") },
                "the cursor is a seek: \(details)")
        }
    }

    @Test func theNewestRolloutOfEachStrategyNeedsNoSortPerStrategy() async throws {
        let store = try Store.inMemory()
        let details = try await store.read("explain the newest per strategy") { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + Store.newestPerStrategySQL).map {
                $0["detail"] as String
            }
        }
        #expect(
            details.contains { $0.contains("SEARCH newest USING COVERING INDEX rollouts_by_strategy") },
            "\(details)")
        #expect(!details.contains { $0.contains("RIGHT PART OF ORDER BY") }, "\(details)")
    }

    @Test func aStoreOfTheSecondSchemaMigratesAndListsAsBefore() async throws {
        // Rollout rows as the store writes them, copied into a file holding only the migrations up to v2.
        let current = try Store.inMemory()
        try await Self.seed(current)
        let rows = try await current.read("copy the rollouts") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM rollouts").map { row in
                (columns: Array(row.columnNames), values: Array(row.databaseValues))
            }
        }
        let directory = try makeTemporaryDirectory("sluice-store-migration")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/sluice.sqlite"
        do {
            let old = try DatabaseQueue(path: path)
            try Store.migrator.migrate(old, upTo: "v2-observed-at")
            try await old.write { db in
                for row in rows {
                    let placeholders = row.columns.map { _ in "?" }.joined(separator: ", ")
                    try db.execute(
                        sql:
                            "INSERT INTO rollouts (\(row.columns.joined(separator: ", "))) VALUES (\(placeholders))",
                        arguments: StatementArguments(row.values))
                }
            }
            let indexes = try await old.read { db in
                try String.fetchAll(
                    db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'rollouts'")
            }
            #expect(!indexes.contains("rollouts_by_creation"), "the old schema has no listing index")
            try old.close()
        }

        let store = try Store(path: path)
        let migrated = try await store.read("inspect the schema") { db in
            (
                applied: try Store.migrator.appliedMigrations(db),
                columns: try ["rollouts_by_creation", "rollouts_by_strategy", "rollouts_by_phase"].reduce(
                    into: [String: [String]]()
                ) { columns, index in
                    columns[index] = try String.fetchAll(
                        db, sql: "SELECT name FROM pragma_index_info(?) ORDER BY seqno", arguments: [index])
                },
                integrity: try String.fetchAll(db, sql: "PRAGMA integrity_check")
            )
        }
        // Every migration is applied, this one among them.
        #expect(migrated.applied == Store.migrator.migrations)
        #expect(migrated.applied.contains("v3-rollout-listing-indexes"))
        #expect(migrated.columns["rollouts_by_creation"] == ["created_at", "id"])
        #expect(migrated.columns["rollouts_by_strategy"] == ["namespace", "name", "created_at", "id"])
        #expect(migrated.columns["rollouts_by_phase"] == ["phase", "created_at", "id"])
        #expect(migrated.integrity == ["ok"])

        // The same listings, page by page, as the store that wrote the rows.
        let all = try await Self.walk(current, size: 7)
        #expect(all.count == 40)
        #expect(try await Self.walk(store, size: 7) == all)
        #expect(
            try await Self.walk(store, strategy: Self.keys[1], size: 4)
                == Self.walk(current, strategy: Self.keys[1], size: 40))
        #expect(
            try await Self.walk(store, phase: .failed, size: 3)
                == Self.walk(current, phase: .failed, size: 40))
        #expect(try await store.rolloutCountsByPhase() == current.rolloutCountsByPhase())
        #expect(try await store.newestRolloutPerStrategy() == current.newestRolloutPerStrategy())
    }
}
