import ArgumentParser
import Foundation
import SluiceAPI
import SluiceCore

/// `sluice events [STRATEGY] [--trace-id ID] [--since DURATION|SEQ] [--tail N] [--follow] [-o json]`: the event log,
/// oldest first.
struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The event log, oldest first; --follow streams new events.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @Argument(help: "NAME or NAMESPACE/NAME (default: every strategy).") var strategy: String?
    @Option(help: "Only this rollout's events.") var rollout: String?
    @Option(help: "Only the events recorded in this trace (the 32 hex digits of a traceparent's second field).")
    var traceID: String?
    @Flag(help: "Keep following new events until interrupted.") var follow = false
    @Option(help: "Start after this event seq.") var after: Int64 = 0
    @Option(help: "Start this long ago (a duration: 90s, 10m, 1h30m, on the server's clock) or at this event seq.")
    var since: String?
    @Option(help: "Only the newest N events (1-10000) of those asked for; with --follow, then the new ones.")
    var tail: Int?
    @Option(name: .shortAndLong, help: "text, or json (one JSON object a line).") var output: Format = .text
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if let since, Int64(since) == nil, Duration(go: since) == nil {
            throw ValidationError("--since must be a duration (90s, 10m, 1h30m) or an event seq, got \"\(since)\"")
        }
        if let tail, !(1...10_000).contains(tail) { throw ValidationError("--tail must be 1...10000, got \(tail)") }
        if let traceID, !Event.isTraceID(traceID.lowercased()) {
            throw ValidationError("--trace-id must be a W3C trace id (32 hex digits, not all 0), got \"\(traceID)\"")
        }
    }

    func run() async throws {
        try await runClient {
            let api = try client.client()
            var filter = ""
            if let strategy { filter += "&strategy=\(APIClient.escape(try strategyKey(strategy).description))" }
            if let rollout { filter += "&rollout=\(APIClient.escape(rollout))" }
            if let traceID { filter += "&trace_id=\(traceID.lowercased())" }
            let print = { (event: EventView) in
                switch output {
                case .json: write("\(lines: String(decoding: try event.json(), as: UTF8.self))\n")
                case .text: write("\(Self.line(event))\n")
                }
            }
            // The server finds where `--since` and `--tail` start (reading back from the newest event); the first
            // page carries them, the next pages go on `after` its last event.
            var last = after
            var window = ""
            if let since {
                if let seq = Int64(since) { last = max(last, seq - 1) } else { window += "&since=\(since)" }
            }
            if let tail { window += "&tail=\(tail)" }
            while true {
                let page = try await api.get("/v1/events?after=\(last)&limit=1000\(filter)\(window)", as: EventList.self)
                window = ""
                for event in page.events { try print(event) }
                last = page.last
                if page.events.count < 1000 { break }
            }
            guard follow else { return }
            // Server-Sent Events after the backlog: each event as it happens.
            try await EventFollower(api: api, filter: filter).follow(after: last) { event in
                try print(event)
                return true
            }
        }
    }

    /// `2026-11-24T08:01:02.000Z  #12  shop/checkout  r-3  TrafficShifted  stage=2 weight=25  by controller  message`
    /// (the stage counted from 1, as `sluice status` shows it; JSON keeps the API's `spec.stages` index), then
    /// `  request=ID` when an API request caused it, so its log lines can be found (`request.id`).
    static func line(_ event: EventView) -> String {
        var where_ = [String]()
        if let stage = event.stage { where_.append("stage=\(stage + 1)") }  // 1-based, as `status` shows it
        if let weight = event.weight { where_.append("weight=\(weight)") }
        var text = "\(event.time)  #\(event.seq)  \(event.strategy)  \(event.rollout)  \(event.type)"
        if !where_.isEmpty { text += "  " + where_.joined(separator: " ") }
        text += "  by \(event.actor)  \(event.message)"
        if let reason = event.reason { text += " (reason: \(reason))" }
        if let request = event.requestID { text += "  request=\(request)" }
        return text
    }
}
