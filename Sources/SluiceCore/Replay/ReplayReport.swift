import Foundation

/// How `sluice replay` shows a timeline: one line per event and a closing verdict for people, or one JSON document.
public struct ReplayReport: Sendable {
    public var replay: Replay
    public var timeline: ReplayTimeline

    public init(replay: Replay, timeline: ReplayTimeline) {
        self.replay = replay
        self.timeline = timeline
    }

    /// A header line, a table of events (TIME, STAGE, WEIGHT, EVENT, MESSAGE) and the verdict.
    public var text: String {
        let strategy = replay.strategy
        let header =
            "replay of \(strategy.key) \(replay.version) from \(replay.from.rfc3339) to \(replay.to.rfc3339) "
            + "every \(replay.step.goString): \(timeline.ticks) ticks, \(timeline.samples) samples"
        let rows =
            [["TIME", "STAGE", "WEIGHT", "EVENT", "MESSAGE"]]
            + timeline.events.map { event in
                [
                    time(event.time), event.stage.map(stageName) ?? "-", event.weight.map { "\($0)%" } ?? "-",
                    event.type.rawValue, event.message,
                ]
            }
        let widths = (0..<4).map { column in rows.map { $0[column].count }.max() ?? 0 }
        let table = rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([header, ""] + table + ["", verdict]).joined(separator: "\n") + "\n"
    }

    /// "would have rolled back at 14:32:10: error-rate 0.023 > 0.01", "would have promoted at ...", or where the
    /// rollout stood when the history ended.
    public var verdict: String {
        switch timeline.outcome {
        case .promoted(let at):
            return "would have promoted at \(time(at)): every stage held and every check passed"
        case .rolledBack(let at, let reason):
            return "would have rolled back at \(time(at)): \(reason)"
        case .paused(let at, let stage, let reason):
            return "would have paused at \(time(at)) in stage \(stageName(stage)) and stayed paused until "
                + "\(time(replay.to)) (a human resumes or rolls back): \(reason)"
        case .undecided(let stage):
            return "neither promoted nor rolled back by \(time(replay.to)): in stage \(stageName(stage)) "
                + "(\(timeline.rollout?.phase.rawValue ?? "Pending")); replay a longer history"
        }
    }

    /// The replay as one JSON document: its settings, the outcome and every event.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(Document(self)), as: UTF8.self) + "\n"
    }

    /// `14:32:10` when the replay lies within one UTC day, else the whole RFC 3339 time.
    func time(_ time: Timestamp) -> String {
        let (from, to, text) = (replay.from.rfc3339, replay.to.rfc3339, time.rfc3339)
        guard from.prefix(10) == to.prefix(10) else { return String(text.prefix(19)) + "Z" }
        return String(text.dropFirst(11).prefix(8))
    }

    /// `2/4 half`: stages counted from 1, as `sluice status` and `sluice events` show them.
    func stageName(_ index: Int) -> String {
        let stages = replay.strategy.stages
        guard stages.indices.contains(index) else { return "\(index + 1)" }
        return "\(index + 1)/\(stages.count) \(stages[index].name)"
    }

    private struct Document: Encodable {
        struct Outcome: Encodable {
            var verdict: String
            var at: String?
            var stage: Int?
            var reason: String?
            var summary: String
        }
        struct Line: Encodable {
            var time: String
            var type: String
            var stage: Int?
            var stageName: String?
            var weight: Int?
            var reason: String?
            var message: String
            var data: [String: JSONValue]
        }
        var strategy: String
        var version: String
        var from: String
        var to: String
        var step: String
        var ticks: Int
        var samples: Int
        var outcome: Outcome
        var events: [Line]

        init(_ report: ReplayReport) {
            let replay = report.replay
            strategy = replay.strategy.key.description
            version = replay.version
            from = replay.from.rfc3339
            to = replay.to.rfc3339
            step = replay.step.goString
            ticks = report.timeline.ticks
            samples = report.timeline.samples
            let summary = report.verdict
            switch report.timeline.outcome {
            case .promoted(let at):
                outcome = Outcome(verdict: "promoted", at: at.rfc3339, summary: summary)
            case .rolledBack(let at, let reason):
                outcome = Outcome(verdict: "rolledBack", at: at.rfc3339, reason: reason, summary: summary)
            case .paused(let at, let stage, let reason):
                outcome = Outcome(verdict: "paused", at: at.rfc3339, stage: stage, reason: reason, summary: summary)
            case .undecided(let stage):
                outcome = Outcome(verdict: "undecided", stage: stage, summary: summary)
            }
            let stages = replay.strategy.stages
            events = report.timeline.events.map { event in
                Line(
                    time: event.time.rfc3339, type: event.type.rawValue, stage: event.stage,
                    stageName: event.stage.flatMap { stages.indices.contains($0) ? stages[$0].name : nil },
                    weight: event.weight, reason: event.reason, message: event.message, data: event.data)
            }
        }
    }
}
