import GRDB
import SluiceCore

extension Store {
    /// How many rollouts the store holds in each phase; a phase without rollouts is absent. One `GROUP BY`
    /// over the phase index, whatever the number of rollouts (`/metrics` asks on every scrape).
    public func rolloutCountsByPhase() async throws -> [Phase: Int] {
        try await read("count rollouts by phase") { db in
            var counts: [Phase: Int] = [:]
            let rows = try Row.fetchAll(
                try db.cachedStatement(sql: "SELECT phase, COUNT(*) AS count FROM rollouts GROUP BY phase"))
            for row in rows {
                let text: String = row["phase"]
                guard let phase = Phase(rawValue: text) else {
                    throw StoreError(.corruptData, "rollouts are stored in an unknown phase \"\(text)\"")
                }
                counts[phase] = row["count"]
            }
            return counts
        }
    }

    /// The newest rollout of each strategy that has one (by creation time, then id, as `rollouts` orders
    /// them), ordered by strategy key. One query that seeks the strategy index once per strategy: only
    /// these rows are decoded, not every rollout.
    public func newestRolloutPerStrategy() async throws -> [Rollout] {
        try await read("read the newest rollout of each strategy") { db in
            let rows = try Row.fetchAll(try db.cachedStatement(sql: Self.newestPerStrategySQL))
            return try rows.map { try Self.decodeRollout($0).rollout }
        }
    }

    /// The query of `newestRolloutPerStrategy`; the strategy index holds (created_at, id), so each seek finds the
    /// newest without sorting the strategy's rollouts.
    static let newestPerStrategySQL = """
        SELECT * FROM rollouts WHERE id IN (
            SELECT (
                SELECT newest.id FROM rollouts AS newest
                WHERE newest.namespace = strategy.namespace AND newest.name = strategy.name
                ORDER BY newest.created_at DESC, newest.id DESC LIMIT 1
            ) FROM (SELECT DISTINCT namespace, name FROM rollouts) AS strategy
        )
        ORDER BY namespace, name
        """
}
