import GRDB
import SluiceCore

extension Store {
    /// The most recent samples of one check of a rollout, oldest first (at most `samplesPerCheck`).
    public func samples(rollout: String, check: String) async throws -> [Sample] {
        try await read("read samples of \(rollout)") { db in
            let texts = try String.fetchAll(
                try db.cachedStatement(
                    sql: "SELECT content FROM samples WHERE rollout = ? AND check_name = ? ORDER BY id"),
                arguments: [rollout, check]
            )
            return try texts.map { try StoreJSON.decode(Sample.self, $0, what: "a sample of \(rollout)/\(check)") }
        }
    }

    /// Adds a sample and drops the oldest beyond `samplesPerCheck` for that rollout and check.
    func insertSample(_ db: Database, rollout: String, _ sample: Sample) throws {
        try db.cachedStatement(sql: "INSERT INTO samples (rollout, check_name, time, content) VALUES (?, ?, ?, ?)")
            .execute(
                arguments: [rollout, sample.check, sample.time.millisecondsSinceEpoch, try StoreJSON.encode(sample)]
            )
        try db.cachedStatement(
            sql: """
                DELETE FROM samples WHERE rollout = ? AND check_name = ? AND id <= (
                    SELECT id FROM samples WHERE rollout = ? AND check_name = ? ORDER BY id DESC LIMIT 1 OFFSET ?)
                """
        ).execute(
            arguments: [rollout, sample.check, rollout, sample.check, samplesPerCheck]
        )
    }
}
