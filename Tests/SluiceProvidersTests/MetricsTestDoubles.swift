import Foundation
import SluiceHTTP

/// An `HTTPClient` that answers every request with one canned response (or error) and remembers
/// the requests, for tests of how providers build requests and read answers.
final class ScriptedHTTPClient: HTTPClient, @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [HTTPRequest] = []
    private let answer: @Sendable (HTTPRequest) throws -> HTTPResponse

    init(status: Int = 200, body: String) {
        answer = { _ in HTTPResponse(status: status, body: Data(body.utf8)) }
    }

    init(_ answer: @escaping @Sendable (HTTPRequest) throws -> HTTPResponse) {
        self.answer = answer
    }

    var requests: [HTTPRequest] {
        lock.withLock { recorded }
    }

    func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        lock.withLock { recorded.append(request) }
        return try answer(request)
    }
}

/// A transport failure as a client reports one.
struct TransportFailure: Error, CustomStringConvertible {
    var description: String
}
