/// The one error type of metric providers and traffic routers: what failed, where, and whether
/// trying again can help. Messages never carry a token or a secret.
public struct ProviderError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The provider could not be reached or did not answer in time.
        case unavailable
        /// The provider answered, but not with something Sluice can use (bad JSON, wrong shape).
        case badResponse
        /// The provider rejected the request (a bad query, a missing route or handler, auth).
        case rejected
        /// The settings in the strategy cannot work (e.g. a weight outside 0...100).
        case invalidConfiguration
        /// Someone changed the object between our read and our write; re-read and try again.
        case conflict
    }

    public var code: Code
    /// Which provider or router, e.g. `prometheus http://127.0.0.1:9090` or `caddy @id checkout`.
    public var provider: String
    public var message: String
    /// The HTTP status the provider answered with, when it answered.
    public var status: Int?
    public var isRetryable: Bool { code == .unavailable || code == .conflict }

    public init(_ code: Code, provider: String, _ message: String, status: Int? = nil) {
        self.code = code
        self.provider = provider
        self.message = message
        self.status = status
    }

    public var description: String {
        "\(provider): \(message)" + (status.map { " (HTTP \($0))" } ?? "")
    }
}
