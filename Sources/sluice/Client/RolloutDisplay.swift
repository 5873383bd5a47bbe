import Foundation
import SluiceAPI

/// Shows a rollout's progress: redrawn in place on a terminal, one plain line per change in a log.
struct RolloutDisplay {
    let terminal: Bool
    /// In a log, a line at least this often even when nothing changed, so CI watchdogs see progress.
    let progressInterval: Duration
    private var drawnLines = 0
    private var lastPlain: String?
    private var lastPrinted: ContinuousClock.Instant?

    init(terminal: Bool, progressInterval: Duration = .seconds(60)) {
        self.terminal = terminal
        self.progressInterval = progressInterval
    }

    /// Draws `rollout`; on a terminal it replaces the previous drawing.
    mutating func show(_ rollout: RolloutView) {
        if terminal {
            let lines = Self.block(rollout)
            var text: TerminalText = drawnLines > 0 ? "\u{1B}[\(drawnLines)A" : ""
            for line in lines { text += "\r\u{1B}[2K\(line)\n" }
            write(text)
            drawnLines = lines.count
        } else {
            // A log gets a line when something other than the countdowns changed, and every `progressInterval`.
            let line = Self.line(rollout, withHold: false)
            let now = ContinuousClock.now
            if line != lastPlain || lastPrinted.map({ now - $0 >= progressInterval }) ?? true {
                write("\(Self.timestamp()) \(Self.line(rollout, withHold: true))\n")
                lastPlain = line
                lastPrinted = now
            }
        }
    }

    /// One plain line: phase, stage, weight, hold left, last value of each check.
    static func line(_ rollout: RolloutView, withHold: Bool) -> String {
        var parts = ["\(rollout.strategy) \(rollout.id) \(rollout.phase)"]
        if let stage = rollout.stage, let count = rollout.stageCount {
            parts.append("stage \(stage.index + 1)/\(count) \(stage.name)")
        }
        parts.append("weight " + weightText(rollout, withAge: withHold))
        if withHold, let left = rollout.holdRemainingSeconds { parts.append("hold \(formatSeconds(left)) left") }
        if withHold, let left = rollout.bakeRemainingSeconds { parts.append("bake \(formatSeconds(left)) left") }
        if let paused = rollout.pausedBecause { parts.append("(\(paused))") }
        if let undoing = rollout.undoing { parts.append("(undoing the promotion: \(undoing))") }
        let checks = rollout.checks.map(checkText)
        if !checks.isEmpty { parts.append(checks.joined(separator: " ")) }
        if let failure = rollout.router?.failure { parts.append("(stuck: \(failure); Sluice retries it)") }
        return parts.joined(separator: "  ")
    }

    /// The weight the router read back, and the weight Sluice wants when they differ:
    /// `10% (want 0%, router not confirming for 40s)`. `withAge: false` leaves the seconds out (a log line is
    /// printed when this text changes, not every second).
    static func weightText(_ rollout: RolloutView, withAge: Bool = true) -> String {
        guard let router = rollout.router else {
            // Stored before read-backs were kept, or not ticked yet: only what Sluice wants is known.
            let finished = ["Succeeded", "RolledBack", "Failed"].contains(rollout.phase)
            return finished ? "\(rollout.weight)%" : "? (want \(rollout.weight)%, no read-back yet)"
        }
        if router.confirmed, let weight = router.weight { return "\(weight)%" }
        let observed = router.weight.map { "\($0)%" } ?? "?"
        var why = "want \(rollout.weight)%"
        if router.weight == nil { why += ", router never read back" }
        if let seconds = router.unconfirmedSeconds {
            why += ", router not confirming" + (withAge ? " for \(formatSeconds(seconds))" : "")
        }
        return "\(observed) (\(why))"
    }

    /// The terminal drawing: a header, a progress bar of the canary weight, one line per check.
    static func block(_ rollout: RolloutView) -> [String] {
        var header = "\(rollout.strategy)  \(rollout.id)  \(rollout.version)  \(rollout.phase)"
        if let paused = rollout.pausedBecause { header += "  (\(paused))" }
        var stageText = ""
        if let stage = rollout.stage, let count = rollout.stageCount {
            stageText = "stage \(stage.index + 1)/\(count) \(stage.name)"
        }
        let observed = rollout.router?.weight ?? rollout.weight
        var lines = [header, "\(bar(observed, text: weightText(rollout)))  \(stageText)"]
        if let left = rollout.holdRemainingSeconds { lines[1] += "  hold \(formatSeconds(left)) left" }
        if let left = rollout.bakeRemainingSeconds { lines[1] += "  bake \(formatSeconds(left)) left" }
        if let undoing = rollout.undoing { lines.append("  undoing the promotion: \(undoing)") }
        for check in rollout.checks { lines.append("  " + checkText(check)) }
        if let failure = rollout.router?.failure { lines.append("  stuck: \(failure); Sluice retries it") }
        return lines
    }

    /// A progress bar of the canary weight the router read back, followed by `text` (the weight by default).
    static func bar(_ weight: Int, width: Int = 30, text: String? = nil) -> String {
        let filled = max(0, min(width, weight * width / 100))
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
            + (weight < 10 ? "  " : weight < 100 ? " " : "") + (text ?? "\(weight)%")
    }

    static func checkText(_ check: CheckView) -> String {
        guard let verdict = check.verdict else { return "\(check.name)=(no sample yet)" }
        let value = check.value.map { String(format: "%g", $0) } ?? "no-data"
        // A comparison says what its number means: "errors 2/118 canary vs 31/10,402 stable; e-value 3.1 of 100 needed".
        let because = check.explanation.map { " (\($0))" } ?? ""
        return "\(check.name)=\(value) \(verdict)\(because)"
    }

    static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date())
    }
}
