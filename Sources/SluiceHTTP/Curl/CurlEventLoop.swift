import CCurl
import Foundation
import SluiceCore

/// One thread driving one `curl_multi` handle: `perform` / `info_read` / `poll`, woken by `curl_multi_wakeup`
/// when a transfer is submitted or cancelled. Connections, TLS sessions and DNS answers are cached by the multi
/// handle and reused across transfers; HTTP/2 streams are multiplexed where the server offers it.
final class CurlEventLoop: @unchecked Sendable {
    private struct Inbox {
        var added: [CurlTransfer] = []
        var cancelled: [CurlTransfer] = []
        var stopping = false
        var isEmpty: Bool { added.isEmpty && cancelled.isEmpty && !stopping }
    }

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_ALL)) }()
    private static let maxPooledHandles = 256
    /// Idle connections kept for reuse, over all hosts (each one a file descriptor).
    private static let maxIdleConnections = 512
    /// Connections open at once to one host (HTTP/1.1: one request each; HTTP/2 multiplexes over them).
    static let maxConnectionsPerHost = 128

    private let multi: UnsafeMutableRawPointer
    private let inbox = Locked(Inbox())
    private let pool = Locked([UnsafeMutableRawPointer]())
    // Loop thread only.
    private var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    /// The streams among `active`, whose idle deadlines the loop watches (kept apart so that the loop's work per
    /// iteration does not grow with the number of ordinary transfers).
    private var streams: [UnsafeMutableRawPointer: CurlTransfer] = [:]

    init() throws {
        Self.globalInit
        guard let multi = curl_multi_init() else {
            throw HTTPError(code: .protocolError, url: "", message: "curl_multi_init failed")
        }
        self.multi = multi
        _ = sluice_multi_setopt_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
        // By default curl keeps 4 idle connections per easy handle added *now*; transfers are removed as they end,
        // so between bursts the cache shrinks to a few and every burst reconnects. At 10,000 rollouts that was
        // ~2,000 new connections a second, ports stuck in TIME_WAIT and connect() timeouts (BENCHMARKS.md).
        _ = sluice_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, Self.maxIdleConnections)
        // Requests beyond this many to one host wait in curl for a connection instead of opening ever more.
        _ = sluice_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, Self.maxConnectionsPerHost)
        let thread = Thread { [self] in run() }
        thread.name = "sluice-curl"
        thread.start()
    }

    /// An easy handle from the pool, or a new one.
    func makeHandle() throws -> UnsafeMutableRawPointer {
        if let handle = pool.withLock({ $0.popLast() }) { return handle }
        guard let handle = curl_easy_init() else {
            throw HTTPError(code: .protocolError, url: "", message: "curl_easy_init failed")
        }
        return handle
    }

    private func recycle(_ handle: UnsafeMutableRawPointer) {
        let kept = pool.withLock { pool in
            guard pool.count < Self.maxPooledHandles else { return false }
            pool.append(handle)
            return true
        }
        if !kept { curl_easy_cleanup(handle) }
    }

    func submit(_ transfer: CurlTransfer) {
        post { $0.added.append(transfer) }
    }

    func cancel(_ transfer: CurlTransfer) {
        transfer.markCancelled()
        post { $0.cancelled.append(transfer) }
    }

    /// Stops the thread; transfers still running end with `.cancelled`.
    func shutdown() {
        post { $0.stopping = true }
    }

    private func post(_ change: (inout Inbox) -> Void) {
        let wasEmpty = inbox.withLock { inbox in
            let wasEmpty = inbox.isEmpty
            change(&inbox)
            return wasEmpty
        }
        // One wakeup per batch: a non-empty inbox has already woken the loop, which drains it all at once.
        if wasEmpty { _ = curl_multi_wakeup(multi) }
    }

    private func run() {
        var running: Int32 = 0
        while true {
            let batch = inbox.withLock { inbox in
                let batch = inbox
                inbox.added.removeAll(keepingCapacity: true)
                inbox.cancelled.removeAll(keepingCapacity: true)
                return batch
            }
            if batch.stopping {
                for transfer in batch.added { finish(transfer, .failure(cancelledError(transfer))) }
                break
            }
            for transfer in batch.added {
                if transfer.isCancelled {
                    finish(transfer, .failure(cancelledError(transfer)))
                } else if curl_multi_add_handle(multi, transfer.easy) != CURLM_OK {
                    finish(transfer, .failure(HTTPError(code: .protocolError, url: transfer.url,
                        message: "curl_multi_add_handle failed")))
                } else {
                    active[transfer.easy] = transfer
                    if let sink = transfer.sink {
                        streams[transfer.easy] = transfer
                        sink.started()
                    }
                }
            }
            // Identity, not just the handle: a handle finished and recycled may already carry another transfer.
            for transfer in batch.cancelled where active[transfer.easy] === transfer {
                // Removing a handle mid-transfer closes its connection: the server sees the client go away.
                remove(transfer)
                finish(transfer, .failure(cancelledError(transfer)))
            }
            curl_multi_perform(multi, &running)
            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
                let code = message.pointee.data.result  // read before removal frees the message
                guard let transfer = active[easy] else { continue }
                remove(transfer)
                finish(transfer, transfer.outcome(code))
            }
            curl_multi_poll(multi, nil, 0, expireIdleStreams(), nil)
        }
        for transfer in active.values {
            remove(transfer)
            finish(transfer, .failure(cancelledError(transfer)))
        }
        for handle in pool.withLock({ $0 }) { curl_easy_cleanup(handle) }
        pool.withLock { $0.removeAll() }
        curl_multi_cleanup(multi)
    }

    /// Ends every stream that has received nothing for its idle timeout; returns how long the loop may poll
    /// (milliseconds) before the next idle deadline, at most a second.
    private func expireIdleStreams() -> Int32 {
        let now = ContinuousClock.now
        var wait = Duration.seconds(1)
        for transfer in streams.values {
            guard let sink = transfer.sink else { continue }
            let left = sink.idleDeadline - now
            if left <= .zero {
                remove(transfer)
                finish(transfer, .failure(HTTPError(code: .timedOut, url: transfer.url,
                    message: "no data for \(sink.idleTimeout) (idle timeout of the stream)")))
            } else {
                wait = min(wait, left)
            }
        }
        return Int32(wait.roundedUpMilliseconds)
    }

    /// Takes a transfer out of curl's multi handle and the loop's books.
    private func remove(_ transfer: CurlTransfer) {
        active.removeValue(forKey: transfer.easy)
        streams.removeValue(forKey: transfer.easy)
        curl_multi_remove_handle(multi, transfer.easy)
    }

    private func finish(_ transfer: CurlTransfer, _ outcome: Result<HTTPResponse, HTTPError>) {
        transfer.release()
        transfer.slot?.release()
        recycle(transfer.easy)
        transfer.complete(outcome)
    }

    private func cancelledError(_ transfer: CurlTransfer) -> HTTPError {
        HTTPError(code: .cancelled, url: transfer.url, message: "the request was cancelled")
    }
}
