/// An error the API answers with: a status, a stable code, a message and details.
///
/// Rendered as `{"error": {"code": "...", "message": "...", "details": [...]}}` (docs/api.md). The
/// message never holds a token or a secret; it says what went wrong and, where it can, what to do.
public struct APIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, machine-readable error code; each maps to one HTTP status.
    public struct Code: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// 400: the body or a parameter could not be understood.
        public static let badRequest = Code(rawValue: "bad_request")
        /// 401: no token, or a token the server does not know.
        public static let unauthenticated = Code(rawValue: "unauthenticated")
        /// 403: a known token without the role the route needs.
        public static let forbidden = Code(rawValue: "forbidden")
        /// 404: unknown strategy, rollout or route.
        public static let notFound = Code(rawValue: "not_found")
        /// 405: the route exists but not with this method.
        public static let methodNotAllowed = Code(rawValue: "method_not_allowed")
        /// 409: an active rollout exists, or the rollout is in the wrong phase for the command.
        public static let conflict = Code(rawValue: "conflict")
        /// 413: the body is larger than the API accepts (1 MiB).
        public static let tooLarge = Code(rawValue: "too_large")
        /// 422: the strategy is invalid; `details` holds every error with its position.
        public static let invalidStrategy = Code(rawValue: "invalid_strategy")
        /// 503: the server is not ready (store closed, reconciler not running).
        public static let unavailable = Code(rawValue: "unavailable")
        /// 500: a failure inside Sluice; the log has the cause.
        public static let `internal` = Code(rawValue: "internal")

        /// The HTTP status this code is answered with.
        public var status: Int {
            switch self {
            case .badRequest: 400
            case .unauthenticated: 401
            case .forbidden: 403
            case .notFound: 404
            case .methodNotAllowed: 405
            case .conflict: 409
            case .tooLarge: 413
            case .invalidStrategy: 422
            case .unavailable: 503
            default: 500
            }
        }
    }

    public var code: Code
    public var message: String
    public var details: [ErrorDetail]

    public init(_ code: Code, _ message: String, details: [ErrorDetail] = []) {
        self.code = code
        self.message = message
        self.details = details
    }

    public var status: Int { code.status }
    public var description: String { "\(code): \(message)" }
}

/// One item of an error's `details`: for an invalid strategy, where in the document and what is wrong.
public struct ErrorDetail: Sendable, Hashable, Codable {
    /// The dotted path in the document (`spec.stages[2].weight`), when known.
    public var path: String?
    public var line: Int?
    public var column: Int?
    public var message: String
    /// The file the error is in, when the source had a name.
    public var file: String?

    public init(path: String? = nil, line: Int? = nil, column: Int? = nil, message: String, file: String? = nil) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        self.file = file
    }
}

/// The JSON error body, as served and as the CLI decodes it.
public struct ErrorBody: Sendable, Codable {
    public struct Payload: Sendable, Codable {
        public var code: String
        public var message: String
        public var details: [ErrorDetail]
    }
    public var error: Payload

    public init(_ error: APIError) {
        self.error = Payload(code: error.code.rawValue, message: error.message, details: error.details)
    }
}
