import Hummingbird
import HummingbirdCore

/// Counts the API's open connections into `APIMetrics` and stops accepting at `limit`: Hummingbird then
/// leaves new connections in the listen backlog until one closes (the idle timeout closes slow and idle
/// ones). One accept round may take a few more than the limit; it bounds, it does not count exactly.
struct ConnectionLimit: AvailableConnectionsDelegate {
    let limit: Int
    let metrics: APIMetrics
    private var open = 0

    init(limit: Int, metrics: APIMetrics) {
        self.limit = limit
        self.metrics = metrics
    }

    mutating func connectionOpened() {
        open += 1
        metrics.recordConnections(1)
    }

    mutating func connectionClosed() {
        open -= 1
        metrics.recordConnections(-1)
    }

    func isAcceptingNewConnections() -> Bool { open < limit }
}
