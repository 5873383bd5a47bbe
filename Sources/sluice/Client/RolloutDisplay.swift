import Foundation
import SluiceAPI

/// Shows a rollout's progress: redrawn in place on a terminal, one plain line per change in a log.
struct RolloutDisplay {
    let terminal: Bool
    private var drawnLines = 0
    private var lastPlain: String?

    init(terminal: Bool) { self.terminal = terminal }

    /// Draws `rollout`; on a terminal it replaces the previous drawing.
    mutating func show(_ rollout: RolloutView) {
        if terminal {
            let lines = Self.block(rollout)
            var text: TerminalText = drawnLines > 0 ? "\u{1B}[\(drawnLines)A" : ""
            for line in lines { text += "\r\u{1B}[2K\(line)\n" }
            write(text)
            drawnLines = lines.count
        } else {
            // A log gets a line when something other than the countdown changed.
            let line = Self.line(rollout, withHold: false)
            if line != lastPlain {
                write("\(Self.timestamp()) \(Self.line(rollout, withHold: true))\n")
                lastPlain = line
            }
        }
    }

    /// One plain line: phase, stage, weight, hold left, last value of each check.
    static func line(_ rollout: RolloutView, withHold: Bool) -> String {
        var parts = ["\(rollout.strategy) \(rollout.id) \(rollout.phase)"]
        if let stage = rollout.stage, let count = rollout.stageCount {
            parts.append("stage \(stage.index + 1)/\(count) \(stage.name)")
        }
        parts.append("weight \(rollout.weight)%")
        if withHold, let left = rollout.holdRemainingSeconds { parts.append("hold \(formatSeconds(left)) left") }
        if let paused = rollout.pausedBecause { parts.append("(\(paused))") }
        let checks = rollout.checks.map(checkText)
        if !checks.isEmpty { parts.append(checks.joined(separator: " ")) }
        return parts.joined(separator: "  ")
    }

    /// The terminal drawing: a header, a progress bar of the canary weight, one line per check.
    static func block(_ rollout: RolloutView) -> [String] {
        var header = "\(rollout.strategy)  \(rollout.id)  \(rollout.version)  \(rollout.phase)"
        if let paused = rollout.pausedBecause { header += "  (\(paused))" }
        var stageText = ""
        if let stage = rollout.stage, let count = rollout.stageCount {
            stageText = "stage \(stage.index + 1)/\(count) \(stage.name)"
        }
        var lines = [header, "\(bar(rollout.weight))  \(stageText)"]
        if let left = rollout.holdRemainingSeconds { lines[1] += "  hold \(formatSeconds(left)) left" }
        for check in rollout.checks { lines.append("  " + checkText(check)) }
        return lines
    }

    static func bar(_ weight: Int, width: Int = 30) -> String {
        let filled = max(0, min(width, weight * width / 100))
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
            + (weight < 10 ? "  " : weight < 100 ? " " : "") + "\(weight)%"
    }

    static func checkText(_ check: CheckView) -> String {
        guard let verdict = check.verdict else { return "\(check.name)=(no sample yet)" }
        let value = check.value.map { String(format: "%g", $0) } ?? "no-data"
        return "\(check.name)=\(value) \(verdict)"
    }

    static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date())
    }
}
