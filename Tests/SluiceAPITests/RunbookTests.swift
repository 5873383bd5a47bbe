import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing

/// Every `sluice` command in runbooks/*.md, run as written (through bash, pipes and all) against a real
/// `sluice serve` with a rollout behind a real Caddy: each must parse (never exit 64) and exit with a code the
/// runbooks document; the outcomes the runbooks promise are checked where they say what to expect.
struct RunbookTests {
    /// A `sluice` command found in a runbook, and where.
    struct Command: CustomStringConvertible {
        var file: String
        var line: Int
        var text: String
        var description: String { "\(file):\(line): \(text)" }
        /// Runs until interrupted (follows a stream or waits for a verdict).
        var isLongRunning: Bool {
            text.contains("--follow") || text.contains("--watch")
                || (text.contains("rollout start") && text.contains("--wait"))
        }
    }

    /// Shell lines in ``` blocks that run `sluice`, and inline code spans that start with `sluice `.
    static func commands() throws -> [Command] {
        let directory = repositoryRoot() + "/runbooks"
        var found: [Command] = []
        // The index (README.md: the severity table's first commands, a rollback among them) runs last, so the
        // situational runbooks' commands meet the rollout still in flight.
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted { ($0 == "README.md" ? 1 : 0, $0) < ($1 == "README.md" ? 1 : 0, $1) }
        for name in names where name.hasSuffix(".md") {
            let text = try String(contentsOfFile: directory + "/" + name, encoding: .utf8)
            var inBlock = false
            for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.hasPrefix("```") {
                    inBlock.toggle()
                    continue
                }
                if inBlock {
                    if line.range(of: #"(^|[;(]\s*|until\s+|"\s+)sluice\s"#, options: .regularExpression) != nil {
                        found.append(Command(file: name, line: index + 1, text: line))
                    }
                } else {
                    for span in line.split(separator: "`", omittingEmptySubsequences: false).enumerated()
                    where span.offset % 2 == 1 && span.element.hasPrefix("sluice ") {
                        found.append(Command(file: name, line: index + 1, text: String(span.element)))
                    }
                }
            }
        }
        return found
    }

    @Test
    func theRunbooksNameEnoughCommandsToBeWorthChecking() throws {
        let commands = try Self.commands()
        #expect(commands.count >= 30, "\(commands)")
        for verb in [
            "rollback", "status", "events", "promote", "resume", "pause", "rollout start", "token hash", "validate",
        ] {
            #expect(commands.contains { $0.text.contains("sluice \(verb)") }, "no runbook uses sluice \(verb)")
        }
    }

    @Test
    func everyRunbookCommandRunsAsWrittenAgainstARealServer() async throws {
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        let server = try await ServeProcess.start()
        defer { server.stop() }
        try await server.applyBehind(caddy, hold: "1m")
        let ci = server.tokenArgs(.ci)
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v1"] + ci).status == 0)

        // The runbooks' setup (runbooks/README.md): SLUICE_SERVER and SLUICE_TOKEN, `sluice` on PATH.
        let work = try makeTemporaryDirectory("sluice-runbooks")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let admin = ServeProcess.token(.admin)
        try admin.write(toFile: work + "/github-ci.token", atomically: true, encoding: .utf8)  // the new, valid token
        try "revoked-token".write(toFile: work + "/old.token", atomically: true, encoding: .utf8)
        try "apiVersion: sluice.dev/v1\nkind: Strategy\n".write(
            toFile: work + "/FILE", atomically: true, encoding: .utf8)
        let binDirectory = URL(fileURLWithPath: try sluiceBinary()).deletingLastPathComponent().path
        let prelude =
            "set -o pipefail; export SLUICE_SERVER='\(server.url)' SLUICE_TOKEN='\(admin)' "
            + "PATH='\(binDirectory)':\"$PATH\"; "

        for command in try Self.commands() {
            // The runbooks' example strategy is the test's strategy.
            let text = command.text.replacingOccurrences(of: "shop/checkout", with: "web/search")
            if command.isLongRunning {
                // Runs until stopped: it must get as far as printing, and still run (or end with a verdict).
                let sluicePart = text.components(separatedBy: " | ").first!
                let process = try ManagedProcess(
                    name: "runbook-\(command.line)", executable: "/bin/bash", arguments: ["-c", prelude + sluicePart],
                    directory: work, installHint: "apt-get install -y bash")
                defer { process.stop() }
                try await waitUntil("\(command) to print", timeout: .seconds(20)) { !process.logTail().isEmpty }
                if !process.isRunning {
                    #expect(
                        [0, 1, 3, 4, 5].contains(process.process.terminationStatus), "\(command)\n\(process.logTail())")
                }
                #expect(!process.logTail().contains("Usage:"), "\(command)\n\(process.logTail())")
                continue
            }
            let result = try await run("/bin/bash", ["-c", prelude + text], in: work, timeout: .seconds(60))
            let output = "\(command)\nexit \(result.status)\n\(result.stdout)\n\(result.stderr)"
            #expect([0, 1, 3, 4, 5].contains(result.status), "a documented exit code: \(output)")
            #expect(!result.stderr.contains("Usage:") && !result.stderr.contains("Error: "), "parses: \(output)")
            // Where a runbook says what to expect, it is what happens.
            if text.hasPrefix("sluice rollback") && result.status == 0 {
                #expect(result.stdout.contains("traffic: "), "\(output)")
            }
            if text.hasPrefix("sluice rollback") && result.status == 3 {
                #expect(result.stderr.contains("no active rollout of web/search"), "\(output)")
            }
            if text.contains("old.token") {
                #expect(result.stdout.contains("exit 3") && result.stderr.contains("401 unauthenticated"), "\(output)")
            }
            if text.hasPrefix("sluice validate FILE") || text.hasPrefix("sluice serve --config FILE") {
                #expect(result.status == 1 && result.stderr.contains("FILE:"), "invalid, with file:line: \(output)")
            }
            if text.hasPrefix("sluice token hash") {
                #expect(result.stdout == TokenHash.hex(admin) + "\n", "\(output)")
            }
        }
    }

    @Test
    func theManualRollbackRunbookEndsWithTrafficOnStable() async throws {
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        let server = try await ServeProcess.start()
        defer { server.stop() }
        try await server.applyBehind(caddy, hold: "1m")
        #expect(
            try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci)).status
                == 0)
        try await waitUntil("the canary to take traffic", timeout: .seconds(20)) {
            try await runSluice(["status", "web/search"] + server.tokenArgs(.viewer)).stdout.contains("10%")
        }
        // Step 1: one command; its last line says where traffic is.
        let oncall = server.tokenArgs(.oncall)
        let rollback = try await runSluice(["rollback", "web/search", "--reason", "5xx on canary, INC-1234"] + oncall)
        #expect(rollback.status == 0, "\(rollback.stderr)")
        #expect(rollback.stdout.contains("rollback of web/search (rollout "), "\(rollback.stdout)")
        #expect(
            rollback.stdout.contains("traffic: 100% stable, 0% canary, confirmed by the router at "),
            "\(rollback.stdout)")
        // Step 2: status and events say so.
        try await waitUntil("the rollout to be RolledBack", timeout: .seconds(20)) {
            let table = try await runSluice(["status", "web/search"] + server.tokenArgs(.viewer)).stdout
            return table.contains("RolledBack") && table.contains(" 0% ")
        }
        let events = try await runSluice(["events", "web/search"] + server.tokenArgs(.viewer)).stdout
        let lines = events.split(separator: "\n")
        #expect(
            lines.contains {
                $0.contains("RollbackStarted") && $0.contains("by oncall-bot") && $0.contains("5xx on canary, INC-1234")
            },
            "\(events)")
        #expect(
            lines.last?.contains("RolledBack") == true && lines.last?.contains("traffic is on stable") == true,
            "\(events)")
        // Caddy itself: the canary's weight is 0, stable first.
        let weights = try await run("/usr/bin/curl", ["-sf", caddy.adminURL + "/id/search"])
        #expect(
            weights.stdout.replacingOccurrences(of: " ", with: "").contains("\"weights\":[1,0]"), "\(weights.stdout)")
        // Nothing left to roll back: exit 3 and the line the runbook quotes.
        let again = try await runSluice(["rollback", "web/search", "--reason", "manual during outage"] + oncall)
        #expect(again.status == 3 && again.stderr == "sluice: no active rollout of web/search\n", "\(again.stderr)")
    }
}
