import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle
import SluiceController
import SluiceCore
import SluiceStore

extension APIServer {
    /// Events per read from the store.
    static let eventPage = 500
    /// How often a follower re-reads the store even without a wake-up.
    static let followRecheck: Duration = .seconds(2)
    /// How often an idle stream sends a comment, so dead clients are noticed and proxies keep it open.
    static let keepalive: Duration = .seconds(15)

    /// `GET /v1/events[?rollout=&strategy=&trace_id=&after=SEQ]`; with `Accept: text/event-stream` it follows.
    func addEventRoutes(to router: Router<APIContext>) {
        route(router, .get, "/v1/events", role: .viewer) { request, _, _ in
            let query = request.uri.queryParameters
            let strategy = try Self.strategyFilter(query)
            let rollout = query.get("rollout")
            let traceID = query.get("trace_id")
            if let traceID, !Event.isTraceID(traceID) {
                throw APIError(
                    .badRequest,
                    "`trace_id` must be a W3C trace id (32 lowercase hex digits, not all 0), got \"\(traceID)\"")
            }
            // A strategy that was never applied is a 404 (a deleted one still has its history in the log).
            if let strategy, try await backend.strategy(strategy, revision: nil) == nil,
                try await backend.events(EventQuery(strategy: strategy, limit: 1)).isEmpty
            {
                throw try await unknownStrategy(strategy)
            }
            var after: Int64 = 0
            if let text = query.get("after") ?? request.headers[HTTPField.Name("Last-Event-ID")!] {
                guard let seq = Int64(text), seq >= 0 else {
                    throw APIError(.badRequest, "`after` must be an event seq (a whole number ≥ 0), got \"\(text)\"")
                }
                after = seq
            }
            // `since=DURATION` (on the server's clock) and `tail=N` move the start to the newest end of the log.
            var since: Timestamp?
            if let text = query.get("since") {
                guard let duration = Duration(go: text), duration >= .zero else {
                    throw APIError(.badRequest, "`since` must be a duration such as 90s, 10m or 1h30m, got \"\(text)\"")
                }
                since = now() + (.zero - duration)
            }
            var tail: Int?
            if let text = query.get("tail") {
                guard let value = Int(text), (1...10_000).contains(value) else {
                    throw APIError(.badRequest, "`tail` must be 1...10000, got \"\(text)\"")
                }
                tail = value
            }
            if since != nil || tail != nil {
                after = try await backend.eventStart(
                    EventQuery(after: after, rollout: rollout, strategy: strategy, traceID: traceID), since: since,
                    tail: tail)
            }
            let accept = request.headers[.accept] ?? ""
            if accept.contains("text/event-stream") {
                return stream(EventQuery(after: after, rollout: rollout, strategy: strategy, traceID: traceID))
            }
            var limit = 1000
            if let text = query.get("limit") {
                guard let value = Int(text), (1...10_000).contains(value) else {
                    throw APIError(.badRequest, "`limit` must be 1...10000, got \"\(text)\"")
                }
                limit = value
            }
            // `wait=SECONDS` long-polls: a client without SSE follows by asking again with `after=last`.
            var wait: Duration = .zero
            if let text = query.get("wait") {
                guard let seconds = Int(text), (0...60).contains(seconds) else {
                    throw APIError(.badRequest, "`wait` must be 0...60 seconds, got \"\(text)\"")
                }
                wait = .seconds(seconds)
            }
            let deadline = ContinuousClock.now + wait
            while true {
                let seen = signal.latest
                let events = try await backend.events(
                    EventQuery(after: after, rollout: rollout, strategy: strategy, limit: limit, traceID: traceID))
                if !events.isEmpty || ContinuousClock.now >= deadline {
                    return try Self.json(EventList(events: events.map(EventView.init), last: events.last?.seq ?? after))
                }
                await signal.wait(after: seen, timeout: min(Self.followRecheck, deadline - ContinuousClock.now))
                if Task.isCancelled || Task.isShuttingDownGracefully {
                    return try Self.json(EventList(events: [], last: after))
                }
            }
        }
    }

    /// A Server-Sent Events stream from `after`: `id:` is the seq, so `Last-Event-ID` resumes exactly.
    private func stream(_ query: EventQuery) -> Response {
        let backend = backend
        let signal = signal
        let after = query.after
        let body = ResponseBody { writer in
            var last = after
            var lastWrite = ContinuousClock.now
            try await writer.write(ByteBuffer(string: ": following events after \(after)\n\n"))
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let seen = signal.latest
                var page = query
                page.after = last
                page.limit = Self.eventPage
                let events = try await backend.events(page)
                if !events.isEmpty {
                    var text = ""
                    for event in events { text += try Self.serverSentEvent(event) }
                    try await writer.write(ByteBuffer(string: text))
                    last = events.last!.seq
                    lastWrite = ContinuousClock.now
                    if events.count == Self.eventPage { continue }
                } else if ContinuousClock.now - lastWrite >= Self.keepalive {
                    try await writer.write(ByteBuffer(string: ": keepalive\n\n"))
                    lastWrite = ContinuousClock.now
                }
                await signal.wait(after: seen, timeout: Self.followRecheck)
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .init("X-Accel-Buffering")!: "no"],
            body: body)
    }

    /// One event in SSE framing; the data is one line of JSON.
    static func serverSentEvent(_ event: Event) throws -> String {
        let json = String(decoding: try EventPayload(event).json(), as: UTF8.self)
        return "id: \(event.seq)\nevent: \(event.type.rawValue)\ndata: \(json)\n\n"
    }
}
