import Foundation
import SluiceHTTP
import Testing

@Suite("RetryPolicy: what is retried and how long to wait")
struct RetryPolicyTests {
    let policy = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(100), maxDelay: .seconds(1))

    @Test("full jitter stays within 0 ... min(maxDelay, base * 2^(attempt-1))", arguments: [
        (1, Duration.milliseconds(100)), (2, .milliseconds(200)), (3, .milliseconds(400)), (4, .milliseconds(800)),
        (5, .seconds(1)), (40, .seconds(1)),
    ])
    func jitterBounds(attempt: Int, ceiling: Duration) {
        #expect(policy.delay(afterAttempt: attempt, retryAfter: nil, random: 0) == .zero)
        #expect(policy.delay(afterAttempt: attempt, retryAfter: nil, random: 0.5) == ceiling / 2)
        #expect(policy.delay(afterAttempt: attempt, retryAfter: nil, random: 0.999_999) < ceiling)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let delay = policy.delay(afterAttempt: attempt, retryAfter: nil, random: Double.random(in: 0..<1, using: &generator))
            #expect(delay >= .zero && delay <= ceiling)
        }
    }

    @Test("Retry-After replaces the backoff and is capped")
    func retryAfterCap() {
        let capped = RetryPolicy(retryAfterCap: .seconds(30))
        #expect(capped.delay(afterAttempt: 1, retryAfter: .seconds(3), random: 0.9) == .seconds(3))
        #expect(capped.delay(afterAttempt: 1, retryAfter: .seconds(3600), random: 0) == .seconds(30))
    }

    @Test("Retry-After parses seconds and HTTP-dates; junk is ignored")
    func parseRetryAfter() {
        let now = Date(timeIntervalSince1970: 1_445_412_480)  // Wed, 21 Oct 2015 07:28:00 GMT
        #expect(RetryPolicy.parseRetryAfter("120", now: now) == .seconds(120))
        #expect(RetryPolicy.parseRetryAfter(" 0 ", now: now) == .zero)
        #expect(RetryPolicy.parseRetryAfter("Wed, 21 Oct 2015 07:28:10 GMT", now: now) == .seconds(10))
        #expect(RetryPolicy.parseRetryAfter("Wed, 21 Oct 2015 07:27:00 GMT", now: now) == .zero)
        #expect(RetryPolicy.parseRetryAfter("-5", now: now) == nil)
        #expect(RetryPolicy.parseRetryAfter("soon", now: now) == nil)
    }

    @Test("statuses: 429 and 5xx gateways are retried for idempotent methods, other 4xx never", arguments: [
        (429, "GET", true), (503, "GET", true), (502, "PUT", true), (504, "DELETE", true), (503, "POST", false),
        (503, "PATCH", false), (400, "GET", false), (404, "GET", false), (409, "PUT", false), (500, "GET", false),
        (200, "GET", false),
    ])
    func statuses(status: Int, method: String, retried: Bool) {
        #expect(policy.shouldRetry(status: status, method: method) == retried)
    }

    @Test("a caller can allow retrying a non-idempotent method")
    func nonIdempotentOptIn() {
        #expect(RetryPolicy(retryNonIdempotent: true).shouldRetry(status: 503, method: "POST"))
    }

    @Test("errors: a failed connect is retried for any method, a timeout only when idempotent", arguments: [
        (HTTPError.Code.connectFailed, "POST", true), (.dnsFailed, "POST", true), (.timedOut, "GET", true),
        (.timedOut, "POST", false), (.protocolError, "PUT", true), (.tlsFailed, "GET", false),
        (.tooLarge, "GET", false), (.cancelled, "GET", false), (.invalidRequest, "GET", false),
    ])
    func errors(code: HTTPError.Code, method: String, retried: Bool) {
        let error = HTTPError(code: code, url: "http://x/", message: "m")
        #expect(policy.shouldRetry(error, method: method) == retried)
    }
}

@Suite("HTTPError")
struct HTTPErrorTests {
    @Test("the URL never carries credentials, a query or a fragment", arguments: [
        ("https://user:pass@example.com/a?b=c", "https://example.com/a"),
        ("https://example.com/a?token=pass#pass", "https://example.com/a"),
        ("http://token@127.0.0.1:8080/", "http://127.0.0.1:8080/"),
        ("https://example.com/a@b", "https://example.com/a@b"),
        ("https://example.com", "https://example.com"),
    ])
    func redaction(url: String, expected: String) {
        let error = HTTPError(code: .connectFailed, url: url, message: "refused")
        #expect(error.url == expected)
        #expect(!error.description.contains("pass"))
    }
}
