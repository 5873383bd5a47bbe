import Foundation
import SluiceCore

/// The one outbound HTTP seam of Sluice. `CurlClient` implements it over libcurl's multi interface.
public protocol HTTPClient: Sendable {
    /// Sends `request` and returns the response. A 4xx/5xx answer is a response, not an error;
    /// transport failures throw `HTTPError`.
    func execute(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// An outbound request and everything that governs how it is sent.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    /// Header fields in order; names are case-insensitive on the wire.
    public var headers: [(name: String, value: String)]
    public var body: Data?
    /// Whole-transfer deadline, from when the transfer starts: a client may first queue a request behind others
    /// to the same origin (`CurlClient`: 128 in flight per origin), and that wait is its caller's to bound.
    public var timeout: Duration
    public var connectTimeout: Duration
    /// A larger response body fails with `HTTPError.Code.tooLarge`; memory stays bounded.
    public var maxResponseBytes: Int
    public var tls: TLSOptions
    public var auth: Authentication?
    public var retry: RetryPolicy

    public init(
        method: String = "GET", url: String, headers: [(name: String, value: String)] = [], body: Data? = nil,
        timeout: Duration = .seconds(10), connectTimeout: Duration = .seconds(5), maxResponseBytes: Int = 16 << 20,
        tls: TLSOptions = .init(), auth: Authentication? = nil, retry: RetryPolicy = .default
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.maxResponseBytes = maxResponseBytes
        self.tls = tls
        self.auth = auth
        self.retry = retry
    }
}

/// A received response.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: Data
    /// The HTTP version the response came over (`CURLINFO_HTTP_VERSION` for `CurlClient`); nil when the client
    /// does not know (test doubles).
    public var httpVersion: HTTPVersion?

    public init(
        status: Int, headers: [(name: String, value: String)] = [], body: Data = Data(),
        httpVersion: HTTPVersion? = nil
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.httpVersion = httpVersion
    }

    /// The first header named `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { ASCIIBytes.sameFieldName($0.name, name) }?.value
    }
}

/// A version of the HTTP protocol, as negotiated for one response (HTTP/2 over TLS is chosen by ALPN).
public enum HTTPVersion: String, Sendable, Hashable, CustomStringConvertible {
    case http1_0 = "HTTP/1.0"
    case http1_1 = "HTTP/1.1"
    case http2 = "HTTP/2"
    case http3 = "HTTP/3"

    public var description: String { rawValue }
}

/// TLS settings of one request. Verification is on unless `insecureSkipVerify` is set explicitly.
public struct TLSOptions: Sendable, Hashable {
    public enum Source: Sendable, Hashable {
        case file(String)
        case pem(Data)
    }
    public var ca: Source?
    public var clientCertificate: Source?
    public var clientKey: Source?
    public var insecureSkipVerify: Bool

    public init(ca: Source? = nil, clientCertificate: Source? = nil, clientKey: Source? = nil, insecureSkipVerify: Bool = false) {
        self.ca = ca
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
        self.insecureSkipVerify = insecureSkipVerify
    }
}

/// How a request proves who sends it.
public enum Authentication: Sendable, Hashable {
    case bearer(String)
    case awsSigV4(AWSCredentials, region: String, service: String)
}

/// AWS credentials; `sessionToken` for temporary ones.
public struct AWSCredentials: Sendable, Hashable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
}

/// Bounded retries with exponential backoff and full jitter.
public struct RetryPolicy: Sendable, Hashable {
    /// Total attempts including the first; 1 means no retry.
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// Retry even a non-idempotent method (the caller knows it is safe).
    public var retryNonIdempotent: Bool
    /// The longest wait a server's `Retry-After` can impose.
    public var retryAfterCap: Duration

    public init(
        maxAttempts: Int = 3, baseDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(5),
        retryNonIdempotent: Bool = false, retryAfterCap: Duration = .seconds(30)
    ) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.retryNonIdempotent = retryNonIdempotent
        self.retryAfterCap = retryAfterCap
    }

    public static let `default` = RetryPolicy()
    public static let none = RetryPolicy(maxAttempts: 1)
}
