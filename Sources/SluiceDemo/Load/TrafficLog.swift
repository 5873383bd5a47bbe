import Foundation

/// One answer the load generator got: when (Unix milliseconds), which version answered (from the
/// `X-Demo-Version` header; nil when nothing answered), the status (0 for a transport error), how many
/// times the request was sent again after a connection-level failure, and for status 0 what went wrong.
public struct LoadSample: Sendable, Hashable {
    public var milliseconds: Int64
    public var version: String?
    public var status: Int
    /// Sends after the first one (see `LoadGenerator.connectionRetries`); 0 when the first send was answered.
    public var retries: Int
    /// For status 0, the transport failure of the last send (an `HTTPError.Code`: `timedOut`, `connectFailed`, ...).
    public var failure: String?

    public init(milliseconds: Int64, version: String?, status: Int, retries: Int = 0, failure: String? = nil) {
        self.milliseconds = milliseconds
        self.version = version
        self.status = status
        self.retries = retries
        self.failure = failure
    }

    /// `MILLISECONDS VERSION STATUS RETRIES [FAILURE]`, one line of a traffic log file (`-` for no version).
    public var line: String {
        "\(milliseconds) \(version ?? "-") \(status) \(retries)\(failure.map { " " + $0 } ?? "")\n"
    }

    /// Parses a `line` (also the older `MILLISECONDS VERSION STATUS`); nil for a line that is not one.
    public init?(line: Substring) {
        let parts = line.split(separator: " ")
        guard (3...5).contains(parts.count), let ms = Int64(parts[0]), let status = Int(parts[2]) else { return nil }
        var retries = 0
        if parts.count >= 4 {
            guard let value = Int(parts[3]), value >= 0 else { return nil }
            retries = value
        }
        self.init(
            milliseconds: ms, version: parts[1] == "-" ? nil : String(parts[1]), status: status, retries: retries,
            failure: parts.count == 5 ? String(parts[4]) : nil)
    }
}

/// The answers seen at the load balancer, in arrival order: what a stage's split and the moment traffic
/// was back on stable are measured from.
public final class TrafficLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [LoadSample] = []

    public init(samples: [LoadSample] = []) { stored = samples }

    /// Reads a traffic log file written by `sluice-demo-app load --log FILE`.
    public convenience init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DemoError("cannot read the traffic log \(path)")
        }
        let text = String(decoding: data, as: UTF8.self)
        self.init(samples: text.split(separator: "\n").compactMap(LoadSample.init(line:)))
    }

    public func append(_ sample: LoadSample) {
        lock.lock()
        stored.append(sample)
        lock.unlock()
    }

    public var samples: [LoadSample] {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }

    /// Answers per version (`-` when none answered) in `[from, to)`, Unix milliseconds.
    public func counts(from: Int64, to: Int64) -> [String: Int] {
        var counts: [String: Int] = [:]
        for sample in samples where sample.milliseconds >= from && sample.milliseconds < to {
            counts[sample.version ?? "-", default: 0] += 1
        }
        return counts
    }

    /// The share of `version` among answers in `[from, to)`, in percent; nil when there were none.
    public func percent(of version: String, from: Int64, to: Int64) -> Double? {
        let counts = counts(from: from, to: to)
        let total = counts.values.reduce(0, +)
        guard total > 0 else { return nil }
        return 100 * Double(counts[version] ?? 0) / Double(total)
    }

    /// The last answer from `version` at or after `after`, Unix milliseconds.
    public func lastSeen(_ version: String, after: Int64 = 0) -> Int64? {
        samples.last { $0.version == version && $0.milliseconds >= after }?.milliseconds
    }

    /// Answers with a 5xx status or none at all.
    public var failures: Int { samples.filter { $0.status == 0 || $0.status >= 500 }.count }

    /// Requests that were answered only after a connection-level retry.
    public var retried: Int { samples.filter { $0.retries > 0 && $0.status != 0 }.count }
}
