import Logging
import PostgresNIO
import SluiceCore

extension PostgresStore {
    /// The channel every append notifies in its transaction, with the events' strategy key as the payload (empty
    /// for several). PostgreSQL delivers a notification at its transaction's commit, in commit order, to every
    /// session listening: each replica's listener.
    static let eventsChannel = "sluice_events"

    /// Wakes this replica's readers (`eventStream`, `nextEvents`, so SSE and delivery sinks) on every replica's
    /// commits: listens on `eventsChannel` on one dedicated connection, outside the pool, and rings the
    /// broadcaster's commit subscribers of the notified strategy. On the same connection it listens on
    /// `commandsChannel` and hands the commands queue's notices to `notices` (`.missed` each time it starts listening). Readers read every page from the database by
    /// `seq`, so the notification only says when, never what or in which order.
    ///
    /// When the connection fails (the database restarted, failed over, or cut it) this connects again, after a pause
    /// that doubles from `retry` up to `maxRetry`, and each time it starts listening it rings every subscriber
    /// once: a commit may have been notified while nobody here listened. Runs until cancelled.
    static func listen(
        _ configuration: PostgresConnection.Configuration, to broadcaster: EventBroadcaster, notices: CommandNotices,
        retry: Duration, maxRetry: Duration, logger: Logger
    ) async {
        var delay = retry
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: configuration, id: 1, logger: logger)
                do {
                    try await connection.listen(on: eventsChannel) { events in
                        try await connection.listen(on: commandsChannel) { commands in
                            delay = retry
                            broadcaster.ringCommits(of: nil)
                            notices.publish(.missed)
                            // Until either sequence ends (the connection closed) or fails.
                            try await withThrowingTaskGroup(of: Void.self) { group in
                                group.addTask {
                                    for try await notification in events {
                                        broadcaster.ringCommits(of: StrategyKey(notified: notification.payload))
                                    }
                                }
                                group.addTask {
                                    for try await notification in commands {
                                        if let notice = CommandNotice(notified: notification.payload) {
                                            notices.publish(notice)
                                        }
                                    }
                                }
                                defer { group.cancelAll() }
                                _ = try await group.next()
                            }
                        }
                    }
                } catch {
                    // Closed below in every case, cancelled or not: a connection dropped unclosed is a leak (and
                    // trips postgres-nio's assertion in a debug build).
                    if !Task.isCancelled {
                        logger.warning(
                            "lost the database's event notifications; reconnecting",
                            metadata: ["error": "\(PostgresFailure(error))"])
                    }
                }
                try? await connection.close()
            } catch where !Task.isCancelled {
                logger.warning(
                    "cannot listen for the database's event notifications; retrying",
                    metadata: ["error": "\(PostgresFailure(error))", "retry.delay": "\(delay)"])
            } catch {
                return
            }
            try? await Task.sleep(for: delay)  // the reconnect backoff
            delay = min(delay * 2, maxRetry)
        }
    }
}

extension StrategyKey {
    /// The key an events notification names (`namespace/name`); nil for an empty or unreadable payload.
    init?(notified payload: String) {
        guard let slash = payload.firstIndex(of: "/"), slash != payload.startIndex,
            payload.index(after: slash) != payload.endIndex
        else { return nil }
        self.init(namespace: String(payload[..<slash]), name: String(payload[payload.index(after: slash)...]))
    }
}
