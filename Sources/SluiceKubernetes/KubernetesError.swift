import Foundation

/// An error of the Kubernetes layer: a `Status` answered by the API server, a transport failure, or
/// bad configuration (kubeconfig, in-cluster files). Never carries a token or key material.
public struct KubernetesError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is; decides whether a retry can help.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// 404: the object (or the resource type) does not exist.
        public static let notFound = Code(rawValue: "notFound")
        /// 409: a stale `resourceVersion`, or an object that already exists (see `reason`).
        public static let conflict = Code(rawValue: "conflict")
        /// 403: the credentials may not do this.
        public static let forbidden = Code(rawValue: "forbidden")
        /// 401: the credentials were not accepted.
        public static let unauthorized = Code(rawValue: "unauthorized")
        /// 400, 415 or 422: the request itself is wrong.
        public static let invalid = Code(rawValue: "invalid")
        /// 429: the server asked to slow down (after the bounded retries were used up).
        public static let tooManyRequests = Code(rawValue: "tooManyRequests")
        /// 5xx: the server failed.
        public static let server = Code(rawValue: "server")
        /// The request did not get an answer (connection refused, timeout, TLS failure).
        public static let transport = Code(rawValue: "transport")
        /// The kubeconfig or in-cluster configuration cannot be used.
        public static let configuration = Code(rawValue: "configuration")
        /// The credentials could not be obtained: an exec credential plugin failed or answered nonsense.
        public static let credentials = Code(rawValue: "credentials")
        /// A workload did not reach the state Sluice waited for (e.g. a canary that never became available).
        public static let unavailable = Code(rawValue: "unavailable")
    }

    public var code: Code
    /// The `reason` of the server's `Status` (`NotFound`, `Conflict`, `AlreadyExists`, ...), when there was one.
    public var reason: String?
    public var message: String
    /// The HTTP status, when the server answered.
    public var status: Int?
    /// What was being done, e.g. `PATCH apps/v1 deployments shop/checkout`.
    public var operation: String?

    public init(_ code: Code, _ message: String, reason: String? = nil, status: Int? = nil, operation: String? = nil) {
        self.code = code
        self.message = message
        self.reason = reason
        self.status = status
        self.operation = operation
    }

    /// Whether trying again later can succeed (conflicts, throttling, server and transport failures).
    public var isRetryable: Bool {
        [.conflict, .tooManyRequests, .server, .transport, .unavailable, .credentials].contains(code) && reason != "AlreadyExists"
    }

    public var description: String {
        var text = ""
        if let operation { text += operation + ": " }
        if let status { text += "HTTP \(status) " }
        if let reason { text += reason + ": " }
        return text + message
    }
}

extension KubernetesError {
    /// The code of an HTTP status the API server answered.
    static func code(forStatus status: Int) -> Code {
        switch status {
        case 401: .unauthorized
        case 403: .forbidden
        case 404: .notFound
        case 409: .conflict
        case 429: .tooManyRequests
        case 400, 405, 406, 413, 415, 422: .invalid
        default: status >= 500 ? .server : .invalid
        }
    }

    /// Builds the error for an unsuccessful answer: the `Status` body's reason and message when the
    /// server sent one, otherwise the start of the body.
    static func from(status: Int, body: Data, operation: String) -> KubernetesError {
        struct StatusBody: Decodable {
            var kind: String?
            var reason: String?
            var message: String?
        }
        if let decoded = try? JSONDecoder().decode(StatusBody.self, from: body), decoded.kind == "Status" {
            return KubernetesError(
                code(forStatus: status), decoded.message ?? "no message", reason: decoded.reason, status: status,
                operation: operation)
        }
        let text = String(decoding: body.prefix(300), as: UTF8.self)
        return KubernetesError(
            code(forStatus: status), text.isEmpty ? "empty answer" : text, status: status, operation: operation)
    }
}
