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

    public func pruneSamples(ofRolloutsFinishedBefore cutoff: Timestamp) async throws -> Int {
        // Found once, then dropped a few rollouts per transaction: a first prune of a large store may drop
        // millions of rows, and every tick waits for the one writer meanwhile.
        let finished = try await read("find finished rollouts with samples") { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT id FROM rollouts WHERE active = 0 AND updated_at < ?
                        AND EXISTS (SELECT 1 FROM samples WHERE samples.rollout = rollouts.id)
                    ORDER BY id
                    """,
                arguments: [cutoff.millisecondsSinceEpoch])
        }
        var dropped = 0
        var start = finished.startIndex
        while start < finished.endIndex {
            let batch = Array(finished[start..<min(start + 20, finished.endIndex)])
            start += batch.count
            dropped += try await write("prune the samples of finished rollouts") { db in
                let marks = batch.map { _ in "?" }.joined(separator: ", ")
                try db.execute(
                    sql: "DELETE FROM samples WHERE rollout IN (\(marks))", arguments: StatementArguments(batch))
                return db.changesCount
            }
        }
        return dropped
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
