import ArgumentParser
import Foundation
import SluiceAPI
import SluiceCore

/// `sluice rollback STRATEGY --reason TEXT [--wait D | --no-wait]`: traffic to stable first, then the canary is
/// scaled down. It reports success only once the router reads back weight 0 for the canary.
struct Rollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Roll back the active rollout of a strategy now: traffic to stable first.",
        discussion: """
            Waits until the router reads back 0% for the canary and prints when it did. Exit codes: 0 confirmed on \
            stable (with --no-wait: requested); 3 server unreachable, error, or no active rollout; 5 requested but \
            the router did not confirm within --wait (Sluice keeps retrying; runbooks/manual-rollback.md); 64 usage.
            """)

    @Argument(help: "NAME or NAMESPACE/NAME.") var strategy: String
    @Option(help: "Why (recorded in the event log).") var reason: String
    @Option(help: "How long to wait for the router to confirm traffic on stable, e.g. 30s.")
    var wait: DurationArgument = DurationArgument(.seconds(30))
    @Flag(name: .customLong("no-wait"), help: "Return once the rollback is recorded: requested, not confirmed.")
    var noWait = false
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if reason.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--reason must say why") }
    }

    func run() async throws {
        try await runClient {
            let api = try client.client()
            let key = try strategyKey(strategy)
            var rollout = try await api.activeRollout(of: key)
            // Since when a read-back of 0% counts: after this rollback was recorded, or any while one already runs
            // (running the command again after exit 5 waits for the same rollback).
            var recordedAt = ""
            if rollout.phase == "RollingBack" {
                let why: TerminalText = rollout.endReason.map { " (\($0))" } ?? ""
                write("rollout \(rollout.id) of \(rollout.strategy) is already rolling back\(why); waiting for the router to confirm\n")
            } else {
                rollout = try await api.post(
                    "/v1/rollouts/\(rollout.id)/rollback", json: RollbackRequest(reason: reason), as: RolloutView.self)
                recordedAt = rollout.updatedAt
                write("rollback of \(rollout.strategy) (rollout \(rollout.id), version \(rollout.version)) requested\n")
            }
            if noWait {
                write(
                    "not waiting (--no-wait): the rollback is requested, not confirmed; check: sluice status "
                        + "\(rollout.strategy)\n")
                return
            }
            let deadline = ContinuousClock.now + wait.duration
            let id = rollout.id
            // Re-read at each of the rollout's events until the router confirms stable or `--wait` runs out.
            try await redrawOnChange(
                api, filter: "&rollout=\(APIClient.escape(id))", tick: .seconds(1), deadline: deadline
            ) {
                rollout = try await api.get("/v1/rollouts/\(id)", as: RolloutView.self)
                return Self.onStable(rollout, since: recordedAt) || ContinuousClock.now >= deadline
            }
            guard Self.onStable(rollout, since: recordedAt) else {
                write(Self.unconfirmedLine(rollout))
                throw CLIError(.notConfirmed, Self.notConfirmed(rollout, waited: wait.duration))
            }
            write(Self.trafficLine(rollout, recordedAt: recordedAt))
        }
    }

    /// The router read back 0% for the canary after the rollback was recorded: a RolledBack (or Failed) rollout
    /// ended on that read-back; a RollingBack one shows it in its read-back.
    static func onStable(_ rollout: RolloutView, since recordedAt: String) -> Bool {
        if rollout.phase == "RolledBack" || rollout.phase == "Failed" { return true }
        guard rollout.phase == "RollingBack", let router = rollout.router, router.confirmed, router.weight == 0,
            let readAt = router.readAt
        else { return false }
        return readAt >= recordedAt  // RFC 3339 with milliseconds in UTC: ordered as text
    }

    /// Where traffic is, confirmed by the router, in one line on-call can paste into the incident channel.
    static func trafficLine(_ rollout: RolloutView, recordedAt: String) -> TerminalText {
        var line: TerminalText = "traffic: 100% stable, 0% canary"
        if let readAt = rollout.router?.readAt {
            line += ", confirmed by the router at \(readAt)"
            if !recordedAt.isEmpty, let after = milliseconds(from: recordedAt, to: readAt) {
                line += " (\(after) ms after the request)"
            }
        }
        if rollout.phase == "RollingBack" { return line + "; scaling the canary down (phase RollingBack)\n" }
        return line + "; rollout \(rollout.id) is \(rollout.phase)\n"
    }

    /// What the router does when it has not confirmed: the weight it last read back, never the wanted one.
    static func unconfirmedLine(_ rollout: RolloutView) -> TerminalText {
        guard let router = rollout.router, let weight = router.weight else {
            return "traffic: NOT confirmed on stable: the router has not been read back since the rollback\n"
        }
        let at: TerminalText = router.readAt.map { " (at \($0))" } ?? ""
        return "traffic: NOT confirmed on stable: the router last read back \(100 - weight)% stable, \(weight)% canary\(at)\n"
    }

    /// Exit 5's message: what failed and what on-call does next.
    static func notConfirmed(_ rollout: RolloutView, waited: Duration) -> TerminalText {
        var text: TerminalText = "rollback of \(rollout.strategy) requested but the router did not confirm 0% canary within "
            + "\(formatSeconds(Double(waited.milliseconds) / 1000)) (rollout \(rollout.id) is \(rollout.phase))"
        if let failure = rollout.router?.failure { text += "\nsluice: last failure: \(failure)" }
        text += "\nsluice: Sluice keeps retrying. Next: set the router to stable by hand (runbooks/manual-rollback.md, "
            + "\"The router does not confirm\"), then watch: sluice status \(rollout.strategy) --watch"
        return text
    }

    /// Milliseconds between two of the API's RFC 3339 times, when both parse.
    static func milliseconds(from start: String, to end: String) -> Int? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let a = formatter.date(from: start), let b = formatter.date(from: end) else { return nil }
        return Int((b.timeIntervalSince(a) * 1000).rounded())
    }
}
