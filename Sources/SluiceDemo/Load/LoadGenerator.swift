import Foundation
import SluiceHTTP

/// A bounded load generator: `rate` GETs a second to `url`, at most `maxRequests` and for at most
/// `duration`, from `workers` concurrent senders. Each answer becomes a `LoadSample`.
public struct LoadGenerator: Sendable {
    public var url: String
    public var rate: Int
    public var duration: Duration
    public var maxRequests: Int
    public var workers: Int
    public var timeout: Duration

    /// Fails with a message naming the setting when one is out of range.
    public init(
        url: String, rate: Int, duration: Duration, maxRequests: Int? = nil, workers: Int = 32,
        timeout: Duration = .seconds(2)
    ) throws {
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw DemoError("--url must be an http(s) URL, got \"\(url)\"")
        }
        guard (1...5_000).contains(rate) else { throw DemoError("--rps must be within 1...5000, got \(rate)") }
        guard duration > .zero, duration <= .seconds(3_600) else {
            throw DemoError("--duration must be within 1s...1h, got \(duration)")
        }
        guard (1...512).contains(workers) else { throw DemoError("--workers must be within 1...512, got \(workers)") }
        let seconds = Int(duration.components.seconds) + (duration.components.attoseconds > 0 ? 1 : 0)
        self.url = url
        self.rate = rate
        self.duration = duration
        self.maxRequests = min(maxRequests ?? rate * seconds, rate * seconds)
        self.workers = workers
        self.timeout = timeout
    }

    /// Sends the load until the count, the duration or cancellation ends it; returns how many were sent.
    @discardableResult
    public func run(client: any HTTPClient, onSample: @escaping @Sendable (LoadSample) -> Void) async -> Int {
        let start = ContinuousClock.now
        let end = start + duration
        let next = Counter()
        let request = HTTPRequest(
            url: url, timeout: timeout, connectTimeout: timeout, maxResponseBytes: 64 << 10,
            retry: RetryPolicy(maxAttempts: 1))
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    while !Task.isCancelled {
                        let index = next.take()
                        guard index < maxRequests else { return }
                        let due = start + .nanoseconds(Int64(Double(index) / Double(rate) * 1e9))
                        guard due < end else { return }
                        // Pacing: each request has its slot on the schedule; a late worker sends at once.
                        do { try await Task.sleep(until: due, clock: .continuous) } catch { return }
                        let sample = await Self.send(request, client: client)
                        // A request the stop abandoned in flight got no answer because we left, not because
                        // nothing answered: it is not a sample.
                        guard !(sample.status == 0 && Task.isCancelled) else { return }
                        onSample(sample)
                    }
                }
            }
        }
        return min(next.peek(), maxRequests)
    }

    static func send(_ request: HTTPRequest, client: any HTTPClient) async -> LoadSample {
        do {
            let response = try await client.execute(request)
            return LoadSample(
                milliseconds: unixMilliseconds(), version: response.header(DemoApp.versionHeader),
                status: response.status)
        } catch {
            return LoadSample(milliseconds: unixMilliseconds(), version: nil, status: 0)
        }
    }
}

/// Now, in Unix milliseconds: the time base shared with Sluice's event log.
public func unixMilliseconds() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

/// The next request index, shared by the workers.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func take() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value - 1
    }
    func peek() -> Int {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
}
