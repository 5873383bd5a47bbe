import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing

/// Every `sluice` command in runbooks/*.md and docs/operations.md, run as written (through bash, pipes and all)
/// with the placeholders runbooks/README.md lists replaced, against a real `sluice serve` with a rollout in flight
/// behind real Caddy, its check answered by a real Prometheus: each must be one the CLI knows and succeed (exit 0,
/// or the one failure its runbook promises), and the outcomes the runbooks promise are checked where they say what
/// to expect. A line marked `# parse-only: WHY` is only parsed: run against a server that is not there, it must get
/// as far as trying to reach it.
struct RunbookTests {
    /// A `sluice` command found in a runbook, and where.
    struct Command: CustomStringConvertible {
        var file: String
        var line: Int
        var text: String
        var description: String { "\(file):\(line): \(text)" }
        /// The subcommand: the word after `sluice`.
        var verb: String {
            let words = text.split(separator: " ").map(String.init)
            guard let index = words.firstIndex(of: "sluice"), index + 1 < words.count else { return "" }
            return String(words[index + 1].prefix { $0.isLetter || $0 == "-" })
        }
        /// Marked `# parse-only: WHY`: it would delete or overwrite what the other commands need, or needs what a
        /// test cannot have.
        var isParseOnly: Bool { text.contains("# parse-only:") }
        /// From an inline code span rather than a sh block.
        var isInline = false
        /// Prose naming a command without its arguments (`sluice serve`, `sluice rollback`): the verb must exist;
        /// there is nothing to run (an inline command with arguments, and every sh block line, is run).
        var isMention: Bool { isInline && text.split(separator: " ").count == 2 }
        /// Runs until interrupted (follows a stream or waits for a verdict).
        var isLongRunning: Bool {
            text.contains("--follow") || text.contains("--watch")
                || (text.contains("rollout start") && text.contains("--wait"))
        }
    }

    /// runbooks/*.md, then docs/operations.md, then the index (runbooks/README.md: the severity table's first
    /// commands, a rollback among them, and the post-incident export), so the situational runbooks' commands
    /// meet the rollout still in flight.
    static func documents() throws -> [String] {
        let runbooks = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot() + "/runbooks")
            .filter { $0.hasSuffix(".md") && $0 != "README.md" }.sorted().map { "runbooks/" + $0 }
        return runbooks + ["docs/operations.md", "runbooks/README.md"]
    }

    /// Lines of ```sh (bash, shell) blocks that run `sluice`, and inline code spans that start with `sluice `.
    static func commands() throws -> [Command] {
        var found: [Command] = []
        for name in try documents() {
            let text = try String(contentsOfFile: repositoryRoot() + "/" + name, encoding: .utf8)
            var block: String?  // the open fence's info string
            for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.hasPrefix("```") {
                    block = block == nil ? String(line.dropFirst(3)) : nil
                    continue
                }
                if let info = block {
                    if ["sh", "bash", "shell"].contains(info),
                        line.range(of: #"(^|[;(]\s*|until\s+|"\s+)sluice\s"#, options: .regularExpression) != nil
                    {
                        found.append(Command(file: name, line: index + 1, text: line))
                    }
                } else {
                    for span in line.split(separator: "`", omittingEmptySubsequences: false).enumerated()
                    where span.offset % 2 == 1 && span.element.hasPrefix("sluice ") {
                        found.append(Command(file: name, line: index + 1, text: String(span.element), isInline: true))
                    }
                }
            }
        }
        return found
    }

    /// The placeholders runbooks/README.md documents (its table's first column).
    static func documentedPlaceholders() throws -> Set<String> {
        let index = try String(contentsOfFile: repositoryRoot() + "/runbooks/README.md", encoding: .utf8)
        let lines = index.split(separator: "\n").map(String.init)
        guard let header = lines.firstIndex(where: { $0.hasPrefix("| placeholder |") }) else { return [] }
        return Set(
            lines[(header + 2)...].prefix { $0.hasPrefix("|") }.compactMap { row in
                row.split(separator: "`").dropFirst().first.map(String.init)
            })
    }

    /// Subcommands `sluice --help` lists.
    static func verbs() async throws -> Set<String> {
        let help = try await runSluice(["--help"]).stdout
        guard let list = help.components(separatedBy: "SUBCOMMANDS:").last else { return [] }
        return Set(list.split(separator: "\n").compactMap { line in
            line.hasPrefix("  ") && !line.hasPrefix("   ") ? line.split(separator: " ").first.map(String.init) : nil
        })
    }

    /// Verbs that talk to the server: parsed, they get as far as trying to reach it.
    static let clientVerbs: Set<String> = [
        "status", "events", "rollback", "promote", "pause", "resume", "rollout", "strategy", "apply",
    ]

    @Test
    func theRunbooksNameEnoughCommandsToBeWorthChecking() throws {
        let commands = try Self.commands()
        #expect(commands.count >= 50, "\(commands)")
        for verb in [
            "rollback", "status", "events", "promote", "resume", "pause", "rollout start", "rollout list",
            "token hash", "validate", "backup", "strategy delete",
        ] {
            #expect(commands.contains { $0.text.contains("sluice \(verb)") }, "no runbook uses sluice \(verb)")
        }
        #expect(commands.contains { $0.file == "docs/operations.md" && $0.text.hasPrefix("sluice backup --config") })
        #expect(commands.contains { $0.isParseOnly }, "the parse-only convention is used")
        #expect(commands.contains { $0.file == "runbooks/README.md" && $0.text.contains("--rollout ROLLOUT -o json >") })
    }

    /// The strategy the commands act on: `web/search` behind real Caddy, its check a Prometheus query.
    static func strategy(_ caddy: CaddyServer, prometheus: PrometheusServer) -> String {
        ServeProcess.strategy(
            weight: 10, adminURL: caddy.adminURL, stable: caddy.backendDials[0], canary: caddy.backendDials[1],
            check: (#"{prometheus: {address: "\#(prometheus.address)"}}"#, #"{name: up, query: 'up{job="sluice"}', min: 0.5}"#))
    }

    @Test
    func everyRunbookCommandRunsAsWrittenAgainstARealServer() async throws {
        let caddy = try await CaddyServer.start(backendBodies: ["stable", "canary"]) { dials in
            CaddyServer.weightedProxy(id: "search", dials: dials, weights: [100, 0])
        }
        defer { caddy.stop() }
        let server = try await ServeProcess.start()
        defer { server.stop() }
        // Prometheus scrapes Sluice itself: the check asks whether Sluice is up.
        let prometheus = try await PrometheusServer.start(targets: ["127.0.0.1:\(server.port)"], job: "sluice")
        defer { prometheus.stop() }
        let work = try makeTemporaryDirectory("sluice-runbooks")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let strategyFile = work + "/strategy.yaml"
        try Self.strategy(caddy, prometheus: prometheus).write(toFile: strategyFile, atomically: true, encoding: .utf8)
        #expect(try await runSluice(["apply", "-f", strategyFile] + server.tokenArgs(.release)).status == 0)
        let state = RunbookState(server: server)
        try await state.startRollout()
        try await waitUntil("the check answered by Prometheus", timeout: .seconds(30)) {
            let metrics = try await SluiceTestSupport.run("/usr/bin/curl", ["-sf", server.url + "/metrics"]).stdout
            return metrics.contains(/sluice_check_value\{[^}]*check="up"[^}]*\} 1\.0\n/)
        }

        // The runbooks' setup (runbooks/README.md): SLUICE_SERVER and SLUICE_TOKEN, `sluice` on PATH.
        let admin = ServeProcess.token(.admin)
        try admin.write(toFile: work + "/github-ci.token", atomically: true, encoding: .utf8)  // the new, valid token
        try "revoked-token".write(toFile: work + "/old.token", atomically: true, encoding: .utf8)
        let volume = work + "/var-lib-sluice"
        try FileManager.default.createDirectory(atPath: volume + "/backup", withIntermediateDirectories: true)
        let binDirectory = URL(fileURLWithPath: try sluiceBinary()).deletingLastPathComponent().path
        func prelude(_ serverURL: String) -> String {
            "set -o pipefail; export SLUICE_SERVER='\(serverURL)' SLUICE_TOKEN='\(admin)' "
                + "PATH='\(binDirectory)':\"$PATH\"; "
        }
        // Each placeholder runbooks/README.md documents, and what it is here (ROLLOUT: the newest rollout).
        let fixed: [String: String] = [
            "shop/checkout": "web/search", "FILE": strategyFile, "NAME": "admin-bot",
            "/etc/sluice/sluice.yaml": server.directory + "/sluice.yaml", "/var/lib/sluice": volume,
        ]
        #expect(try Self.documentedPlaceholders() == Set(fixed.keys).union(["ROLLOUT"]))
        func substitute(_ text: String) async throws -> String {
            var text = text
            for (placeholder, value) in fixed.sorted(by: { $0.key.count > $1.key.count }) {
                let pattern = "(?<![A-Za-z0-9_/.-])" + NSRegularExpression.escapedPattern(for: placeholder) + "(?![A-Za-z0-9_])"
                text = text.replacingOccurrences(of: pattern, with: value, options: .regularExpression)
            }
            if text.contains("ROLLOUT") {
                text = text.replacingOccurrences(of: "ROLLOUT", with: try await state.newestRollout())
            }
            return text
        }
        let verbs = try await Self.verbs()
        let nowhere = "http://127.0.0.1:\(try freePort())"
        var ran = 0

        for command in try Self.commands() {
            #expect(verbs.contains(command.verb), "\(command): the CLI has no `sluice \(command.verb)`")
            if command.isMention { continue }
            let text = try await substitute(command.text)
            if command.isParseOnly {
                let scratch = try makeTemporaryDirectory("sluice-parse-only")
                defer { try? FileManager.default.removeItem(atPath: scratch) }
                let result = try await run("/bin/bash", ["-c", prelude(nowhere) + text], in: scratch)
                let output = "\(command)\nexit \(result.status)\n\(result.stdout)\n\(result.stderr)"
                #expect(result.status != 64 && !result.stderr.contains("Usage:"), "parses: \(output)")
                if Self.clientVerbs.contains(command.verb) {
                    #expect(result.stderr.contains("cannot reach"), "got as far as the server: \(output)")
                }
                continue
            }
            try await state.prepare(for: text)
            ran += 1
            if command.isLongRunning {
                // Runs until stopped: it must get as far as printing, and still run (or end with a verdict).
                let sluicePart = text.components(separatedBy: " | ").first!
                let process = try ManagedProcess(
                    name: "runbook-\(command.line)", executable: "/bin/bash",
                    arguments: ["-c", prelude(server.url) + sluicePart], directory: work,
                    installHint: "apt-get install -y bash")
                defer { process.stop() }
                try await waitUntil("\(command) to print", timeout: .seconds(20)) { !process.logTail().isEmpty }
                if !process.isRunning {
                    #expect([0, 1, 4].contains(process.process.terminationStatus), "\(command)\n\(process.logTail())")
                }
                #expect(!process.logTail().contains("Usage:"), "\(command)\n\(process.logTail())")
                continue
            }
            let result = try await run("/bin/bash", ["-c", prelude(server.url) + text], in: work, timeout: .seconds(60))
            let output = "\(command)\nran: \(text)\nexit \(result.status)\n\(result.stdout)\n\(result.stderr)"
            #expect(!result.stderr.contains("Usage:") && !result.stderr.contains("Error: "), "parses: \(output)")
            // The one failure a runbook promises: a config that is not one is refused, naming file and line.
            if text.hasPrefix("sluice serve --config ") {
                #expect(result.status == 1 && result.stderr.contains(strategyFile + ":"), "refused with file:line: \(output)")
                continue
            }
            #expect(result.status == 0, "succeeds: \(output)")
            // Where a runbook says what to expect, it is what happens.
            if text.hasPrefix("sluice rollback") {
                #expect(result.stdout.contains("traffic: 100% stable, 0% canary, confirmed by the router"), "\(output)")
            }
            if text.contains("old.token") {
                #expect(result.stdout.contains("exit 3") && result.stderr.contains("401 unauthenticated"), "\(output)")
            }
            if text.hasPrefix("sluice token hash") {
                #expect(result.stdout == TokenHash.hex(admin) + "\n", "\(output)")
            }
            if text.hasPrefix("sluice backup") {
                #expect(result.stdout.contains("backed up") && result.stdout.contains("bytes"), "\(output)")
                #expect(FileManager.default.fileExists(atPath: volume + "/backup/drill.db"), "\(output)")
            }
            if text.contains("> incident-timeline.json") {
                // The timeline: one JSON object a line, every one of the rollout's events.
                let timeline = try String(contentsOfFile: work + "/incident-timeline.json", encoding: .utf8)
                let lines = timeline.split(separator: "\n")
                #expect(lines.count >= 2, "\(timeline)")
                for line in lines {
                    #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any], "\(line)")
                }
                #expect(timeline.contains("RolloutStarted"), "\(timeline)")
            }
        }
        #expect(ran >= 40, "commands run: \(ran)")
    }

    @Test
    func theManualRollbackRunbookEndsWithTrafficOnStable() async throws {
        let (caddy, server) = try await ServeProcess.rolloutBehindCaddy(version: "v2")
        defer {
            server.stop()
            caddy.stop()
        }
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

/// The rollout the runbooks' commands act on, put in the state each command needs: a rollout in flight for
/// `rollback`, `pause` and `promote`, a paused one for `resume`, none for a `rollout start` without `--supersede`.
struct RunbookState {
    let server: ServeProcess
    static let active: Set<String> = ["Pending", "Progressing", "Paused", "Promoting", "RollingBack"]

    func phase() async throws -> String {
        let json = try await runSluice(["status", "web/search", "-o", "json"] + server.tokenArgs(.viewer)).stdout
        return json.firstMatch(of: /"phase"\s*:\s*"([A-Za-z]+)"/).map { String($0.output.1) } ?? ""
    }

    func newestRollout() async throws -> String {
        let json = try await runSluice(["rollout", "list", "web/search", "-o", "json"] + server.tokenArgs(.viewer)).stdout
        guard let id = json.firstMatch(of: /"id"\s*:\s*"([^"]+)"/) else { throw SupportError("no rollout: \(json)") }
        return String(id.output.1)
    }

    /// Waits out a rollout that is ending by itself (promoting, or rolling back).
    func settled() async throws -> String {
        var phase = ""
        try await waitUntil("web/search to settle", timeout: .seconds(30)) {
            phase = try await self.phase()
            return phase != "Promoting" && phase != "RollingBack"
        }
        return phase
    }

    func startRollout() async throws {
        let started = try await runSluice(
            ["rollout", "start", "web/search", "--version", "v\(UUID().uuidString.prefix(6))", "--supersede"]
                + server.tokenArgs(.ci))
        guard started.status == 0 else { throw SupportError("rollout start: \(started.stderr)") }
        try await waitUntil("the rollout to progress", timeout: .seconds(30)) {
            try await self.phase() == "Progressing"
        }
    }

    func run(_ arguments: [String]) async throws {
        let result = try await runSluice(arguments + ["web/search"] + server.tokenArgs(.oncall), timeout: .seconds(40))
        guard result.status == 0 else { throw SupportError("sluice \(arguments): \(result.stderr)") }
    }

    func prepare(for text: String) async throws {
        let words = text.split(separator: " ").map(String.init)
        guard let index = words.firstIndex(of: "sluice"), index + 1 < words.count else { return }
        let verb = words[index + 1]
        if verb == "rollout" && words.contains("start") && !words.contains("--supersede") {
            if Self.active.contains(try await settled()) { try await run(["rollback", "--reason", "next test"]) }
            _ = try await settled()
            return
        }
        guard ["rollback", "pause", "promote", "resume"].contains(verb) else { return }
        if !Self.active.contains(try await settled()) { try await startRollout() }
        let phase = try await self.phase()
        if verb == "resume" && phase != "Paused" { try await run(["pause"]) }
        if verb == "pause" && phase == "Paused" { try await run(["resume"]) }
    }
}
