import Foundation
import SluiceCore

/// A transport failure of an outbound request. A 4xx/5xx answer is an `HTTPResponse`, never this.
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, coarse enough to act on.
    public enum Code: String, Sendable, Hashable {
        /// The request itself is malformed (bad URL, method or header); nothing was sent.
        case invalidRequest
        case connectFailed
        case dnsFailed
        case tlsFailed
        case timedOut
        case cancelled
        /// The response body exceeded `HTTPRequest.maxResponseBytes`.
        case tooLarge
        case protocolError
    }

    public var code: Code
    /// The request URL without user info, query and fragment (`Redaction.url`): errors are logged and stored.
    public var url: String
    /// libcurl's own message (or ours for `invalidRequest`); never holds a token or a secret.
    public var message: String
    /// The `CURLcode` behind the error, when libcurl produced it.
    public var underlyingCode: Int?

    public init(code: Code, url: String, message: String, underlyingCode: Int? = nil) {
        self.code = code
        self.url = Redaction.url(url)
        self.message = message
        self.underlyingCode = underlyingCode
    }

    /// Whether trying the same request again may succeed.
    public var isRetryable: Bool {
        switch code {
        case .connectFailed, .dnsFailed, .timedOut, .protocolError: true
        case .invalidRequest, .tlsFailed, .cancelled, .tooLarge: false
        }
    }

    public var description: String {
        let curl = underlyingCode.map { " (curl \($0))" } ?? ""
        return "HTTP \(code.rawValue) for \(url): \(message)\(curl)"
    }
}
