import Foundation
import SluiceCore

/// The demo's summary: for each rollout in an event log, the time spent in each stage and the split
/// measured at the load balancer, and for a rollback the time from the breach to the last answer of
/// the canary version (traffic back on stable, as the clients saw it).
public struct DemoReport: Sendable {
    /// One stage of one rollout, as the events and the traffic log show it.
    public struct StageLine: Sendable, Hashable {
        public var name: String
        public var weight: Int
        /// From `StageStarted` to the next stage, promotion or rollback, in milliseconds.
        public var durationMs: Int64
        /// The canary version's share of the answers between `TrafficShifted` and the stage's end.
        public var measuredPercent: Double?
        public var answers: Int
    }

    /// One rollout in the log.
    public struct RolloutLine: Sendable, Hashable {
        public var id: String
        public var version: String
        /// The last phase-deciding event: `Promoted`, `RolledBack`, `Failed`, or the last event seen.
        public var outcome: String
        public var durationMs: Int64
        public var stages: [StageLine]
        /// The first `CheckBreached` event's time and message.
        public var breachAtMs: Int64?
        public var breach: String?
        public var rollbackStartedAtMs: Int64?
        /// The first failed answer of the canary version at the load balancer (the breach as clients saw it).
        public var firstCanaryFailureMs: Int64?
        /// The last answer of the canary version at the load balancer (traffic back on stable after it).
        public var lastCanaryAnswerMs: Int64?
    }

    public var rollouts: [RolloutLine]

    /// Builds the report from `events` (oldest first) and what the load generator saw.
    public init(events: [Event], traffic: TrafficLog) {
        var order: [String] = []
        var byRollout: [String: [Event]] = [:]
        for event in events {
            if byRollout[event.rollout] == nil { order.append(event.rollout) }
            byRollout[event.rollout, default: []].append(event)
        }
        rollouts = order.map { Self.rollout($0, byRollout[$0]!, traffic) }
    }

    static func rollout(_ id: String, _ events: [Event], _ traffic: TrafficLog) -> RolloutLine {
        let started = events.first { $0.type == .rolloutStarted }
        var version = "?"
        if case .string(let value)? = started?.data["version"] { version = value }
        let final = events.last { [.promoted, .rolledBack, .failed].contains($0.type) } ?? events.last!
        let ends: Set<EventType> = [.stageStarted, .promoting, .promoted, .rollbackStarted, .failed]
        var stages: [StageLine] = []
        for (index, event) in events.enumerated() where event.type == .stageStarted {
            let rest = events[(index + 1)...]
            let end = rest.first { ends.contains($0.type) }?.time ?? final.time
            let shifted = rest.first { $0.type == .trafficShifted && $0.time <= end }?.time
            var name = "stage \(event.stage ?? 0)"
            if case .string(let value)? = event.data["stage"] { name = value }
            var percent: Double?
            var answers = 0
            if let shifted {
                let from = shifted.millisecondsSinceEpoch
                let to = end.millisecondsSinceEpoch
                answers = traffic.counts(from: from, to: to).values.reduce(0, +)
                percent = traffic.percent(of: version, from: from, to: to)
            }
            stages.append(
                StageLine(
                    name: name, weight: event.weight ?? 0,
                    durationMs: (end - event.time).milliseconds, measuredPercent: percent, answers: answers))
        }
        let breach = events.first { $0.type == .checkBreached }
        let rollback = events.first { $0.type == .rollbackStarted }
        return RolloutLine(
            id: id, version: version, outcome: final.type.rawValue,
            durationMs: (final.time - (started ?? events[0]).time).milliseconds, stages: stages,
            breachAtMs: breach?.time.millisecondsSinceEpoch, breach: breach?.message,
            rollbackStartedAtMs: rollback?.time.millisecondsSinceEpoch,
            firstCanaryFailureMs: breach.flatMap { _ in
                traffic.samples.first { $0.version == version && $0.status >= 500 }?.milliseconds
            },
            lastCanaryAnswerMs: breach.flatMap { _ in traffic.lastSeen(version) })
    }

    /// The summary as the demo prints it.
    public var text: String {
        func seconds(_ ms: Int64) -> String { String(format: "%.1f s", Double(ms) / 1000) }
        var out = ""
        for rollout in rollouts {
            out += "rollout of \(rollout.version): \(rollout.outcome) after \(seconds(rollout.durationMs))\n"
            for stage in rollout.stages {
                let name = stage.name.padding(toLength: 8, withPad: " ", startingAt: 0)
                var line = "  \(name) \(String(format: "%3d", stage.weight)) %  \(seconds(stage.durationMs))"
                if let percent = stage.measuredPercent {
                    line += String(format: "   at Caddy: %.1f %% of %d answers from %@", percent, stage.answers, rollout.version)
                }
                out += line + "\n"
            }
            if let breach = rollout.breachAtMs {
                out += "  breach: \(rollout.breach ?? "")\n"
                if let started = rollout.rollbackStartedAtMs {
                    out += "  rollback started \(seconds(started - breach)) after the breach\n"
                }
                if let last = rollout.lastCanaryAnswerMs {
                    out += "  last \(rollout.version) answer at Caddy \(seconds(last - breach)) from the breach event"
                    if let first = rollout.firstCanaryFailureMs {
                        out += ", \(seconds(last - first)) after its first failed answer"
                    }
                    out += ": traffic back on stable\n"
                }
            }
        }
        return out
    }
}

extension Event {
    /// Reads one line of `sluice events -o json` (the API's event view: `time` in RFC 3339).
    public static func fromLogLine(_ line: Substring) throws -> Event {
        struct View: Decodable {
            var seq: Int64
            var time: String
            var rollout: String
            var strategy: String
            var type: String
            var stage: Int?
            var weight: Int?
            var actor: String
            var reason: String?
            var message: String
            var data: [String: JSONValue]?
        }
        let view = try JSONDecoder().decode(View.self, from: Data(line.utf8))
        guard let time = parseRFC3339(view.time) else { throw DemoError("event \(view.seq): bad time \"\(view.time)\"") }
        let parts = view.strategy.split(separator: "/", maxSplits: 1).map(String.init)
        let key =
            parts.count == 2
            ? StrategyKey(namespace: parts[0], name: parts[1]) : StrategyKey(namespace: "default", name: view.strategy)
        return Event(
            seq: view.seq, time: time, rollout: view.rollout, strategy: key, type: EventType(view.type),
            stage: view.stage, weight: view.weight, actor: view.actor, reason: view.reason, message: view.message,
            data: view.data ?? [:])
    }
}

/// `2026-11-24T07:11:00.123Z` (fractional seconds optional) as a `Timestamp`.
func parseRFC3339(_ text: String) -> Timestamp? {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    let date = formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    return date.map { Timestamp(millisecondsSinceEpoch: Int64(($0.timeIntervalSince1970 * 1000).rounded())) }
}
