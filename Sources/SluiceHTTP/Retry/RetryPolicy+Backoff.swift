import Foundation

extension RetryPolicy {
    /// Methods that can be sent twice without changing the outcome (RFC 9110 9.2.2), less TRACE.
    public static let idempotentMethods: Set<String> = ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]

    /// Statuses worth another attempt: throttling and a gateway or server that is briefly unavailable.
    public static let retryableStatuses: Set<Int> = [429, 502, 503, 504]

    /// Whether `method` may be retried after its request may have reached the server.
    public func mayRetry(method: String) -> Bool {
        retryNonIdempotent || Self.idempotentMethods.contains(method.uppercased())
    }

    /// Whether a response with `status` to `method` should be tried again. Other 4xx never are.
    public func shouldRetry(status: Int, method: String) -> Bool {
        Self.retryableStatuses.contains(status) && mayRetry(method: method)
    }

    /// Whether a transport failure of `method` should be tried again. A failed connect or name lookup means
    /// nothing was sent, so it is retried for any method.
    public func shouldRetry(_ error: HTTPError, method: String) -> Bool {
        switch error.code {
        case .connectFailed, .dnsFailed: true
        case .timedOut, .protocolError: mayRetry(method: method)
        case .invalidRequest, .tlsFailed, .cancelled, .tooLarge: false
        }
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 1): full jitter, a uniform draw in
    /// `0 ... min(maxDelay, baseDelay * 2^(attempt-1))` scaled by `random` in `0..<1`. A server's
    /// `Retry-After` replaces it, capped at `retryAfterCap`.
    public func delay(afterAttempt attempt: Int, retryAfter: Duration?, random: Double) -> Duration {
        if let retryAfter { return min(max(retryAfter, .zero), retryAfterCap) }
        let exponent = min(max(attempt - 1, 0), 30)
        let ceiling = min(maxDelay, baseDelay * (1 << exponent))
        return ceiling * min(max(random, 0), 1)
    }

    /// Parses a `Retry-After` value: delay-seconds or an HTTP-date (relative to `now`). Nil when malformed.
    public static func parseRetryAfter(_ value: String, now: Date) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(trimmed) { return seconds >= 0 ? .seconds(seconds) : nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return .milliseconds(max(0, Int((date.timeIntervalSince(now) * 1000).rounded(.up))))
    }
}
