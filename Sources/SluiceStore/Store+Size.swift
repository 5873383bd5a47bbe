import GRDB

extension Store {
    /// The bytes of the SQLite file in use, after moving the WAL into it: its pages minus the free ones (pages freed
    /// by retention are reused, not returned). For measuring the store's growth; the checkpoint waits for readers.
    public func bytesInUse() async throws -> Int {
        try await mapFailures("measure the store") {
            try await writer.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
                let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                let free = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
                return (pages - free) * (try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0)
            }
        }
    }
}
