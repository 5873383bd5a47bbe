import Foundation
import SluiceHTTP

/// An HTTP client that records requests and answers with the statuses a test scripts (then 200).
public final class RecordingWebhookClient: HTTPClient, @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [HTTPRequest] = []
    private var statuses: [Int]

    /// Answers the first requests with `statuses`, in order, then 200.
    public init(statuses: [Int] = []) { self.statuses = statuses }

    public var received: [HTTPRequest] { lock.withLock { requests } }

    public func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        let status = lock.withLock {
            requests.append(request)
            return statuses.isEmpty ? 200 : statuses.removeFirst()
        }
        return HTTPResponse(status: status)
    }
}
