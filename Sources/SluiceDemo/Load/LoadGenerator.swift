import Foundation
import SluiceHTTP

/// A bounded load generator: `rate` GETs a second to `url`, at most `maxRequests` and for at most
/// `duration`, from `workers` concurrent senders. Each answer becomes a `LoadSample`.
///
/// Like the clients of a real service (a service mesh's default retry policy, a browser, gRPC's transparent
/// retry), it sends a GET again at once, up to `connectionRetries` times, when it failed at the connection
/// level with no answer: refused (`connectFailed`) or closed or reset before any response (`protocolError`).
/// A load balancer that reloads its config drops a few of those: Caddy opens a new listening socket on each
/// config change (every weight change of the Caddy router) and closes the old one, and Linux resets the
/// connections still queued on the closed socket. A timeout and every HTTP status, 5xx included, are never
/// retried: they are what the rollout's checks must see.
public struct LoadGenerator: Sendable {
    public var url: String
    public var rate: Int
    public var duration: Duration
    public var maxRequests: Int
    public var workers: Int
    public var timeout: Duration
    /// How many times a request that failed at the connection level is sent again (0: never).
    public var connectionRetries: Int

    /// Fails with a message naming the setting when one is out of range.
    public init(
        url: String, rate: Int, duration: Duration, maxRequests: Int? = nil, workers: Int = 32,
        timeout: Duration = .seconds(2), connectionRetries: Int = 2
    ) throws {
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw DemoError("--url must be an http(s) URL, got \"\(url)\"")
        }
        guard (1...5_000).contains(rate) else { throw DemoError("--rps must be within 1...5000, got \(rate)") }
        guard duration > .zero, duration <= .seconds(3_600) else {
            throw DemoError("--duration must be within 1s...1h, got \(duration)")
        }
        guard (1...512).contains(workers) else { throw DemoError("--workers must be within 1...512, got \(workers)") }
        guard (0...5).contains(connectionRetries) else {
            throw DemoError("--retries must be within 0...5, got \(connectionRetries)")
        }
        let seconds = Int(duration.components.seconds) + (duration.components.attoseconds > 0 ? 1 : 0)
        self.url = url
        self.rate = rate
        self.duration = duration
        self.maxRequests = min(maxRequests ?? rate * seconds, rate * seconds)
        self.workers = workers
        self.timeout = timeout
        self.connectionRetries = connectionRetries
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
                        let sample = await Self.send(request, client: client, retries: connectionRetries)
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

    /// Sends `request`, and again at most `retries` times while it fails at the connection level.
    public static func send(_ request: HTTPRequest, client: any HTTPClient, retries: Int) async -> LoadSample {
        var attempt = 0
        while true {
            do {
                let response = try await client.execute(request)
                return LoadSample(
                    milliseconds: unixMilliseconds(), version: response.header(DemoApp.versionHeader),
                    status: response.status, retries: attempt)
            } catch {
                let code = (error as? HTTPError)?.code
                if attempt < retries, !Task.isCancelled, let code, retriedCodes.contains(code) {
                    attempt += 1
                    continue
                }
                return LoadSample(
                    milliseconds: unixMilliseconds(), version: nil, status: 0, retries: attempt,
                    failure: code?.rawValue ?? "unknown")
            }
        }
    }

    /// The failures that mean "no answer came on this connection", never "the server is slow or failing".
    static let retriedCodes: Set<HTTPError.Code> = [.connectFailed, .protocolError]
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
