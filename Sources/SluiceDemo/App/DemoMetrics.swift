import Foundation

/// The demo app's Prometheus metrics: `http_requests_total{app,version,code}` and the
/// `http_request_duration_seconds` histogram with the same labels, in the text exposition format.
public final class DemoMetrics: @unchecked Sendable {
    /// Upper bounds of the latency histogram, in seconds (`+Inf` is implied).
    public static let buckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2.5, 5]

    private struct Series {
        var count = 0
        var sum = 0.0
        var bucketCounts = [Int](repeating: 0, count: DemoMetrics.buckets.count)
    }

    private let lock = NSLock()
    private var series: [String: Series] = [:]
    private let app: String
    private let version: String

    /// The status codes the app answers with, exported at 0 from the start. A counter series that is born at its
    /// first increment hides that increment from `rate()` and `increase()` (they take the difference of two
    /// samples, and the first sample already holds 1): a version's first error would never count, and a 2 % error
    /// rate would show only from its second error on. Prometheus' advice is to export known label values at 0.
    public static let codes = [200, 500]

    public init(app: String, version: String) {
        self.app = app
        self.version = version
        for code in Self.codes { series[String(code)] = Series() }
    }

    /// Counts one answered request with its status `code` and how long it took.
    public func record(code: Int, seconds: Double) {
        lock.lock()
        defer { lock.unlock() }
        var entry = series[String(code)] ?? Series()
        entry.count += 1
        entry.sum += seconds
        for (index, bound) in Self.buckets.enumerated() where seconds <= bound { entry.bucketCounts[index] += 1 }
        series[String(code)] = entry
    }

    /// The exposition text served at `GET /metrics`.
    public func render() -> String {
        lock.lock()
        let snapshot = series
        lock.unlock()
        let codes = snapshot.keys.sorted()
        func labels(_ code: String, _ extra: String = "") -> String {
            "{app=\"\(app)\",version=\"\(version)\",code=\"\(code)\"\(extra)}"
        }
        var out = "# HELP http_requests_total Requests answered, by status code.\n# TYPE http_requests_total counter\n"
        for code in codes { out += "http_requests_total\(labels(code)) \(snapshot[code]!.count)\n" }
        out += "# HELP http_request_duration_seconds Time to answer a request.\n"
        out += "# TYPE http_request_duration_seconds histogram\n"
        for code in codes {
            let entry = snapshot[code]!
            for (index, bound) in Self.buckets.enumerated() {
                out += "http_request_duration_seconds_bucket\(labels(code, ",le=\"\(bound)\"")) \(entry.bucketCounts[index])\n"
            }
            out += "http_request_duration_seconds_bucket\(labels(code, ",le=\"+Inf\"")) \(entry.count)\n"
            out += "http_request_duration_seconds_sum\(labels(code)) \(entry.sum)\n"
            out += "http_request_duration_seconds_count\(labels(code)) \(entry.count)\n"
        }
        return out
    }
}
