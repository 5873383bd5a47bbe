import GRDB
import SluiceCore

extension Store {
    /// One page of rollouts, newest first (creation time, then id), optionally of one strategy and/or in
    /// some phases: at most `limit`, all listed after the rollout `cursor` names (nil: from the newest).
    /// A keyset page, so a listing walks every rollout once however many are added meanwhile; a cursor
    /// that names no rollout is `notFound`.
    public func rollouts(
        after cursor: String?, strategy: StrategyKey?, phases: Set<Phase>?, limit: Int
    ) async throws -> [Rollout] {
        precondition(limit > 0, "a page holds at least one rollout")
        return try await read("list rollouts") { db in
            let page = try Self.rolloutPage(db, after: cursor, strategy: strategy, phases: phases, limit: limit)
            let rows = try Row.fetchAll(try db.cachedStatement(sql: page.sql), arguments: page.arguments)
            return try rows.map { try Self.decodeRollout($0).rollout }
        }
    }

    /// The statement that reads one page of `rollouts(after:strategy:phases:limit:)`, with its arguments.
    static func rolloutPage(
        _ db: Database, after cursor: String?, strategy: StrategyKey?, phases: Set<Phase>?, limit: Int
    ) throws -> (sql: String, arguments: StatementArguments) {
        var clauses: [String] = []
        var arguments: StatementArguments = []
        if let cursor {
            guard
                let row = try Row.fetchOne(
                    try db.cachedStatement(sql: "SELECT created_at FROM rollouts WHERE id = ?"), arguments: [cursor])
            else { throw StoreError(.notFound, "rollout \(cursor) (the page cursor) does not exist") }
            let createdAt: Int64 = row["created_at"]
            // A row value, so that SQLite seeks the listing index to the cursor instead of scanning up to it.
            clauses.append("(created_at, id) < (?, ?)")
            arguments += [createdAt, cursor]
        }
        if let strategy {
            clauses.append("namespace = ? AND name = ?")
            arguments += [strategy.namespace, strategy.name]
        }
        if let phases {
            clauses.append("phase IN (\(phases.map { _ in "?" }.joined(separator: ", ")))")
            arguments += StatementArguments(phases.map(\.rawValue).sorted())
        }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        arguments += [limit]
        return ("SELECT * FROM rollouts \(filter) ORDER BY created_at DESC, id DESC LIMIT ?", arguments)
    }
}
