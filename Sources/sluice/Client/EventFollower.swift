import Foundation
import SluiceAPI
import SluiceCore
import SluiceHTTP

/// Follows `GET /v1/events` as Server-Sent Events and survives a dropped connection: it reconnects with
/// `after=` the last seq it handed out, so every event is handed out once, in order, none missed.
struct EventFollower: Sendable {
    let api: APIClient
    /// `strategy=` / `rollout=` filters, already escaped, each as `&name=value`.
    let filter: String

    /// Three of the server's 15 s keep-alive comments: silence this long means the connection is dead.
    static let idleTimeout: Duration = .seconds(45)
    static let firstDelay: Duration = .milliseconds(250)
    static let maxDelay: Duration = .seconds(5)
    /// How long the server may stay unreachable before following gives up (exit 3).
    static let reconnectWindow: Duration = .seconds(120)

    /// Calls `handle` with each event after `after`, oldest first, until it returns false. Throws `CLIError`
    /// when the first connection fails, the server refuses (4xx), or it stays unreachable for `reconnectWindow`.
    func follow(after: Int64, _ handle: (EventView) async throws -> Bool) async throws {
        var last = after
        var connectedOnce = false
        var failures = 0
        var failingSince: ContinuousClock.Instant?
        var serverRetry: Duration?
        while true {
            let reason: String
            do {
                let path = "/v1/events?after=\(last)\(filter)"
                let response = try await api.stream(path, idleTimeout: Self.idleTimeout)
                if response.status != 200 {
                    let body = try await response.collect(upTo: 1 << 20, url: api.server + path)
                    let failure = APIClient.failure(
                        HTTPResponse(status: response.status, headers: response.headers, body: body), method: "GET",
                        path: path)
                    guard response.status >= 500 && connectedOnce else { throw failure }
                    reason = failure.message.description
                } else {
                    connectedOnce = true
                    failingSince = nil
                    var parser = ServerSentEventParser()
                    for try await chunk in response.body {
                        failures = 0
                        for message in parser.feed(chunk) {
                            let event: EventView
                            do {
                                event = try JSONDecoder().decode(EventView.self, from: Data(message.data.utf8))
                            } catch {
                                throw CLIError(.server, "the server sent an event this sluice cannot read: \(error)")
                            }
                            guard event.seq > last else { continue }  // already handed out before a reconnect
                            last = event.seq
                            if try await !handle(event) { return }
                        }
                        serverRetry = parser.retry ?? serverRetry
                    }
                    reason = "the server ended the stream"
                }
            } catch let error as HTTPError where error.isRetryable && connectedOnce {
                reason = error.description
            } catch let error as HTTPError {
                if error.code == .cancelled { throw CancellationError() }
                throw CLIError(.server, "cannot reach the Sluice server at \(Redaction.url(api.server)): \(error)")
            }
            // A cancelled reader's stream just ends: that is the caller stopping, not the server going away.
            try Task.checkCancellation()
            let now = ContinuousClock.now
            let since = failingSince ?? now
            failingSince = since
            if now - since > Self.reconnectWindow {
                throw CLIError(
                    .server,
                    "lost the event stream from \(Redaction.url(api.server)) for over \(Self.reconnectWindow): \(reason)")
            }
            failures += 1
            let delay = Self.delay(afterFailures: failures, serverRetry: serverRetry)
            let seconds = String(
                format: "%.1f", Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
            note("event stream interrupted (\(reason)); reconnecting after event #\(last) in \(seconds)s")
            try await Task.sleep(for: delay)  // backoff before reconnecting; cancellation ends following
        }
    }

    /// Doubling from `firstDelay` (or the server's `retry:`), capped at `maxDelay`, with up to 20% jitter.
    static func delay(afterFailures failures: Int, serverRetry: Duration?) -> Duration {
        let base = max(firstDelay, min(serverRetry ?? .zero, maxDelay))
        let doubled = base * (1 << min(failures - 1, 8))
        return min(doubled, maxDelay) * Double.random(in: 0.8...1.0)
    }
}

/// Redraws `draw` whenever an event passes `filter`, at least every `tick` (so a countdown moves) and once at
/// `deadline` (so a wait ends on time, not up to a tick later), until `draw` returns true. Events come from one `EventFollower` stream, not from polling. A server that
/// restarts is waited for as the follower does: a draw that cannot reach it is skipped, for at most
/// `EventFollower.reconnectWindow`.
func redrawOnChange(
    _ api: APIClient, filter: String, tick: Duration, deadline: ContinuousClock.Instant? = nil,
    _ drawOnce: () async throws -> Bool
) async throws {
    var unreachableSince: ContinuousClock.Instant?
    func draw() async throws -> Bool {
        do {
            let done = try await drawOnce()
            unreachableSince = nil
            return done
        } catch let error as CLIError where error.unreachable {
            let since = unreachableSince ?? .now
            unreachableSince = since
            if ContinuousClock.now - since > EventFollower.reconnectWindow { throw error }
            return false
        }
    }
    if try await draw() { return }
    let (changes, changed) = AsyncThrowingStream<Void, any Error>.makeStream(bufferingPolicy: .bufferingNewest(1))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            do {
                // From the start of the (filtered) log: the backlog costs a few coalesced redraws, and nothing
                // that happens after the first drawing can slip between it and the stream.
                try await EventFollower(api: api, filter: filter).follow(after: 0) { _ in
                    changed.yield()
                    return true
                }
            } catch {
                changed.finish(throwing: error)
            }
        }
        group.addTask {
            while !Task.isCancelled {
                var next = ContinuousClock.now + tick
                if let deadline, deadline > .now { next = min(next, deadline) }
                // The redraw cadence of a countdown (and the caller's deadline), not a wait for a condition.
                try? await Task.sleep(until: next, clock: .continuous)
                changed.yield()
            }
        }
        defer { group.cancelAll() }
        for try await _ in changes {
            if try await draw() { return }
        }
    }
}

/// One line on stderr, prefixed like every other message of the CLI.
func note(_ text: TerminalText) {
    writeError("sluice: \(text)")
}
