import ArgumentParser
import Foundation
import SluiceAPI
import SluiceCore

/// `sluice events [STRATEGY] [--follow] [-o json]`: the event log, oldest first.
struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The event log, oldest first; --follow streams new events.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @Argument(help: "NAME or NAMESPACE/NAME (default: every strategy).") var strategy: String?
    @Option(help: "Only this rollout's events.") var rollout: String?
    @Flag(help: "Keep following new events until interrupted.") var follow = false
    @Option(help: "Start after this event seq.") var after: Int64 = 0
    @Option(name: .shortAndLong, help: "text, or json (one JSON object a line).") var output: Format = .text
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await runClient {
            let api = try client.client()
            var filter = ""
            if let strategy { filter += "&strategy=\(APIClient.escape(try strategyKey(strategy).description))" }
            if let rollout { filter += "&rollout=\(APIClient.escape(rollout))" }
            let print = { (event: EventView) in
                switch output {
                case .json: write(String(decoding: try event.json(), as: UTF8.self) + "\n")
                case .text: write(Self.line(event) + "\n")
                }
            }
            if follow {
                // Server-Sent Events from `after`: the backlog first, then each event as it happens.
                try await EventFollower(api: api, filter: filter).follow(after: after) { event in
                    try print(event)
                    return true
                }
                return
            }
            var last = after
            while true {
                let page = try await api.get("/v1/events?after=\(last)&limit=1000\(filter)", as: EventList.self)
                for event in page.events { try print(event) }
                last = page.last
                if page.events.count < 1000 { return }
            }
        }
    }

    /// `2026-11-24T08:01:02.000Z  #12  shop/checkout  r-3  TrafficShifted  stage=1 weight=25  controller  message`.
    static func line(_ event: EventView) -> String {
        var where_ = [String]()
        if let stage = event.stage { where_.append("stage=\(stage)") }
        if let weight = event.weight { where_.append("weight=\(weight)") }
        var text = "\(event.time)  #\(event.seq)  \(event.strategy)  \(event.rollout)  \(event.type)"
        if !where_.isEmpty { text += "  " + where_.joined(separator: " ") }
        text += "  by \(event.actor)  \(event.message)"
        if let reason = event.reason { text += " (reason: \(reason))" }
        return text
    }
}
