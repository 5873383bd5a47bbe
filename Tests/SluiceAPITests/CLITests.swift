import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing

/// The `sluice` binary as a subprocess against a running `sluice serve`: verbs, output, exit codes.
struct CLITests {
    /// `apply` sends each document of a file on its own, cut where YAML cuts it (`StrategyLoader.documents`): a
    /// `---` with a comment after it starts a document, and an error in one points at its line in the file.
    @Test
    func applySendsEachDocumentOfAFileAsYAMLCutsIt() async throws {
        let server = try await ServeProcess.start()
        defer { server.stop() }
        func named(_ name: String, weight: Int) -> String {
            ServeProcess.strategy(weight: weight).replacingOccurrences(of: "name: search\n", with: "name: \(name)\n")
        }
        let text = "# three strategies\n" + named("a", weight: 10) + "--- # the second one, over 100 %\n"
            + named("b", weight: 500) + "---\n" + named("c", weight: 20)
        let path = server.directory + "/three.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let applied = try await runSluice(["apply", "-f", path] + server.tokenArgs(.release))
        #expect(applied.status == 1, "one of three is invalid: \(applied.stdout) \(applied.stderr)")
        #expect(applied.stdout.contains("strategy web/a created"), "\(applied.stdout)")
        #expect(applied.stdout.contains("strategy web/c created"), "\(applied.stdout)")
        #expect(!applied.stdout.contains("web/b"))
        let line = try #require(text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex {
            $0.contains("weight: 500")
        }) + 1
        #expect(applied.stderr.contains("three.yaml:\(line):"), "the error at its line in the file: \(applied.stderr)")
        #expect(applied.stderr.contains("weight"))
        #expect(applied.stderr.contains("1 of 3 strategies invalid"), "\(applied.stderr)")
    }

    @Test
    func applyStartStatusEventsAndRollbackThroughTheCLI() async throws {
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let release = server.tokenArgs(.release)
        let strategy = server.directory + "/search.yaml"
        try ServeProcess.strategy(weight: 10).write(toFile: strategy, atomically: true, encoding: .utf8)

        let created = try await runSluice(["apply", "-f", strategy] + release)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.contains("strategy web/search created, revision 1"))
        let same = try await runSluice(["apply", "-f", strategy] + release)
        #expect(same.stdout.contains("unchanged"))
        try ServeProcess.strategy(weight: 20).write(toFile: strategy, atomically: true, encoding: .utf8)
        let dry = try await runSluice(["apply", "-f", strategy, "--dry-run"] + release)
        #expect(dry.status == 0)
        #expect(dry.stdout.contains("configured, revision 2 (dry run)"), "\(dry.stdout)")
        #expect(dry.stdout.contains("+") && dry.stdout.contains("20"), "a diff: \(dry.stdout)")

        let bad = server.directory + "/bad.yaml"
        try ServeProcess.strategy(weight: 500).write(toFile: bad, atomically: true, encoding: .utf8)
        let invalid = try await runSluice(["apply", "-f", bad] + release)
        #expect(invalid.status == 1)
        #expect(invalid.stderr.contains("bad.yaml:"), "compiler-style: \(invalid.stderr)")
        #expect(invalid.stderr.contains("weight"))

        let ci = server.tokenArgs(.ci)
        let started = try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + ci)
        #expect(started.status == 0, "\(started.stderr)")
        #expect(started.stdout.contains("of web/search to v2 started"))
        let again = try await runSluice(["rollout", "start", "web/search", "--version", "v3"] + ci)
        #expect(again.status == 3, "an active rollout is a conflict")
        #expect(again.stderr.contains("409"), "\(again.stderr)")

        let viewer = server.tokenArgs(.viewer)
        let json = try await runSluice(["status", "web/search", "-o", "json"] + viewer)
        #expect(json.status == 0, "\(json.stderr)")
        let list = try JSONDecoder().decode(RolloutList.self, from: Data(json.stdout.utf8))
        #expect(list.rollouts.first?.version == "v2")
        let table = try await runSluice(["status"] + viewer)
        #expect(table.stdout.contains("STRATEGY") && table.stdout.contains("web/search"))
        let yaml = try await runSluice(["status", "-o", "yaml"] + viewer)
        #expect(yaml.stdout.contains("version: v2"), "\(yaml.stdout)")

        let forbidden = try await runSluice(["pause", "web/search"] + viewer)
        #expect(forbidden.status == 3)
        #expect(forbidden.stderr.contains("403"))
        let oncall = server.tokenArgs(.oncall)
        let noReason = try await runSluice(["rollback", "web/search"] + oncall)
        #expect(noReason.status == 64, "--reason is required")
        // The strategy's Caddy admin API is not running: the rollback is recorded, never reported as done.
        let rolledBack = try await runSluice(
            ["rollback", "web/search", "--reason", "errors on canary", "--wait", "2s"] + oncall, timeout: .seconds(40))
        #expect(rolledBack.status == 5, "requested, not confirmed: \(rolledBack.stderr)")
        #expect(rolledBack.stdout.contains("traffic: NOT confirmed on stable"), "\(rolledBack.stdout)")
        #expect(rolledBack.stderr.contains("did not answer"), "the router's error: \(rolledBack.stderr)")

        let events = try await runSluice(["events", "web/search", "-o", "json"] + viewer)
        #expect(events.status == 0)
        let lines = events.stdout.split(separator: "\n").compactMap {
            try? JSONDecoder().decode(EventView.self, from: Data($0.utf8))
        }
        #expect(lines.first?.type == "RolloutStarted")
        #expect(lines.first?.actor == "ci-bot", "the token's name is the actor")
        #expect(lines.contains { $0.type == "RollbackStarted" && $0.actor == "oncall-bot" })
        #expect(zip(lines, lines.dropFirst()).allSatisfy { $0.seq < $1.seq }, "oldest first")
    }

    @Test
    func waitTimesOutWithExitFourAndTheRolloutGoesOn() async throws {
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let strategy = server.directory + "/search.yaml"
        try ServeProcess.strategy(weight: 10).write(toFile: strategy, atomically: true, encoding: .utf8)
        #expect(try await runSluice(["apply", "-f", strategy] + server.tokenArgs(.release)).status == 0)
        let waited = try await runSluice(
            ["rollout", "start", "web/search", "--version", "v2", "--wait", "--timeout", "2s"] + server.tokenArgs(.ci))
        #expect(waited.status == 4, "\(waited.stdout)\n\(waited.stderr)")
        #expect(waited.stderr.contains("timed out"))
        #expect(waited.stderr.split(separator: "\n").count == 1, "one line, no stream noise: \(waited.stderr)")
        #expect(waited.stdout.contains("web/search"), "plain progress lines when not a terminal: \(waited.stdout)")
        #expect(!waited.stdout.contains("\u{1B}["), "no escape codes in a log")
    }

    @Test
    func waitExitsOneWhenTheRolloutIsRolledBack() async throws {
        // A real Caddy: the rollback must put traffic back on stable before the rollout is RolledBack.
        let caddy = try await CaddyServer.start(backendBodies: ["stable", "canary"]) { dials in
            CaddyServer.weightedProxy(id: "search", dials: dials, weights: [100, 0])
        }
        defer { caddy.stop() }
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let strategy = server.directory + "/search.yaml"
        try ServeProcess.strategy(
            weight: 10, adminURL: caddy.adminURL, stable: caddy.backendDials[0], canary: caddy.backendDials[1]
        ).write(toFile: strategy, atomically: true, encoding: .utf8)
        #expect(try await runSluice(["apply", "-f", strategy] + server.tokenArgs(.release)).status == 0)
        async let waited = runSluice(
            ["rollout", "start", "web/search", "--version", "v2", "--wait", "--timeout", "60s"] + server.tokenArgs(.ci),
            timeout: .seconds(90))
        try await waitUntil("the rollout to exist", timeout: .seconds(30)) {
            try await runSluice(["status", "web/search", "-o", "json"] + server.tokenArgs(.viewer)).stdout.contains("v2")
        }
        let rollback = try await runSluice(["rollback", "web/search", "--reason", "test"] + server.tokenArgs(.admin))
        #expect(rollback.status == 0, "\(rollback.stderr)")
        let result = try await waited
        #expect(result.status == 1, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stderr.contains("rolled back"))
        #expect(result.stderr.split(separator: "\n").count == 1, "one line, no stream noise: \(result.stderr)")
        let status = try await runSluice(["status", "web/search", "-o", "json"] + server.tokenArgs(.viewer))
        let rollout = try JSONDecoder().decode(RolloutList.self, from: Data(status.stdout.utf8)).rollouts.first
        #expect(rollout?.phase == "RolledBack" && rollout?.weight == 0)
    }

    @Test
    func waitExitsZeroWhenTheRolloutSucceeds() async throws {
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        let server = try await ServeProcess.start()
        defer { server.stop() }
        try await server.applyBehind(caddy, hold: "1s")
        let waited = try await runSluice(
            ["rollout", "start", "web/search", "--version", "v2", "--wait", "--timeout", "60s"] + server.tokenArgs(.ci),
            timeout: .seconds(90))
        #expect(waited.status == 0, "\(waited.stdout)\n\(waited.stderr)")
        #expect(waited.stdout.contains("succeeded"))
        #expect(waited.stdout.contains("budget=0.9 pass"), "the last value of each check: \(waited.stdout)")
        let metrics = try await run("/usr/bin/curl", ["-sf", server.url + "/metrics"])
        #expect(metrics.stdout.contains(#"sluice_rollouts{phase="Succeeded"} 1.0"#), "\(metrics.stdout)")
        #expect(metrics.stdout.contains(#"sluice_provider_requests_total{provider="caddy",outcome="success"}"#))
        #expect(metrics.stdout.contains(#"sluice_provider_requests_total{provider="slo",outcome="value"}"#))
    }

    @Test
    func eventsFollowStreamsLiveAndSurvivesServerRestartsWithoutGapsOrDuplicates() async throws {
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let strategy = server.directory + "/search.yaml"
        try ServeProcess.strategy(weight: 10).write(toFile: strategy, atomically: true, encoding: .utf8)
        #expect(try await runSluice(["apply", "-f", strategy] + server.tokenArgs(.release)).status == 0)
        let follower = try ManagedProcess(
            name: "sluice-events-follow", executable: try sluiceBinary(),
            arguments: ["events", "web/search", "--follow", "-o", "json"] + server.tokenArgs(.viewer),
            directory: server.directory, installHint: "swift build")
        defer { follower.stop() }
        /// The events the follower printed so far (its log also holds its stderr notes).
        func followed() -> [EventView] {
            follower.logTail(1 << 20).split(separator: "\n").compactMap {
                $0.hasPrefix("{") ? try? JSONDecoder().decode(EventView.self, from: Data($0.utf8)) : nil
            }
        }
        func waitFor(_ type: String, count: Int = 1) async throws {
            try await waitUntil("the follower to print \(count) \(type)", timeout: .seconds(20)) {
                guard follower.isRunning else { throw SupportError("the follower exited: \(follower.logTail())") }
                return followed().filter { $0.type == type }.count >= count
            }
        }
        let ci = server.tokenArgs(.ci)
        let started = try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + ci)
        #expect(started.status == 0, "\(started.stderr)")
        try await waitFor("RolloutStarted")
        #expect(try await runSluice(["pause", "web/search"] + server.tokenArgs(.oncall)).status == 0)
        try await waitFor("Paused")

        // A graceful restart ends the stream; a crash cuts it. Each time an event commits right after the restart,
        // likely before the follower is back: it must come from `after=` the last seq the follower saw.
        try await server.restart(signal: SIGTERM)
        #expect(try await runSluice(["resume", "web/search"] + server.tokenArgs(.oncall)).status == 0)
        try await waitFor("Resumed")
        try await server.restart(signal: SIGKILL)
        #expect(try await runSluice(["pause", "web/search"] + server.tokenArgs(.oncall)).status == 0)
        try await waitFor("Paused", count: 2)
        #expect(follower.logTail().contains("reconnecting after event #"), "\(follower.logTail())")

        // What the follower printed is exactly the log: every event once, in order.
        let all = try await runSluice(["events", "web/search", "-o", "json"] + server.tokenArgs(.viewer))
        let log = all.stdout.split(separator: "\n").map {
            try? JSONDecoder().decode(EventView.self, from: Data($0.utf8))
        }
        try await waitUntil("the follower to catch up with the log", timeout: .seconds(20)) {
            followed().count >= log.count
        }
        #expect(followed().map(\.seq) == log.map { $0?.seq })
        #expect(followed() == log.compactMap { $0 })
        #expect(Set(followed().map(\.seq)).count == followed().count, "no duplicates")
    }

    @Test
    func statusWatchRedrawsAtEachEvent() async throws {
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let strategy = server.directory + "/search.yaml"
        try ServeProcess.strategy(weight: 10).write(toFile: strategy, atomically: true, encoding: .utf8)
        #expect(try await runSluice(["apply", "-f", strategy] + server.tokenArgs(.release)).status == 0)
        let ci = server.tokenArgs(.ci)
        let started = try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + ci)
        #expect(started.status == 0, "\(started.stderr)")
        let watcher = try ManagedProcess(
            name: "sluice-status-watch", executable: try sluiceBinary(),
            arguments: ["status", "web/search", "--watch"] + server.tokenArgs(.viewer),
            directory: server.directory, installHint: "swift build")
        defer { watcher.stop() }
        try await waitUntil("the first table", timeout: .seconds(20)) { watcher.logTail().contains("Progressing") }
        #expect(try await runSluice(["pause", "web/search"] + server.tokenArgs(.oncall)).status == 0)
        // The hold is a minute and the watch redraws on its own only every 5 s: well inside that, the event must.
        let pausedAt = ContinuousClock.now
        try await waitUntil("a table showing Paused", timeout: .seconds(20)) { watcher.logTail().contains("Paused") }
        #expect(ContinuousClock.now - pausedAt < .seconds(4), "redrawn by the event, not by the 5 s tick")
        #expect(!watcher.logTail().contains("\u{1B}["), "no escape codes when stdout is not a terminal")
        // A refused stream is an answer, not a dropped connection: exit 3 with the server's word, no retrying.
        try "not-a-token".write(toFile: server.directory + "/wrong.token", atomically: true, encoding: .utf8)
        let refused = try await runSluice(
            ["events", "--follow", "--server", server.url, "--token-file", server.directory + "/wrong.token"])
        #expect(refused.status == 3 && refused.stderr.contains("401 unauthenticated"), "\(refused.stderr)")
    }

    @Test
    func waitOnATerminalRedrawsInPlaceWithAProgressBar() async throws {
        // Real Caddy, so the stage's weight is applied and its one-minute hold runs.
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        let server = try await ServeProcess.start()
        defer { server.stop() }
        try await server.applyBehind(caddy, hold: "1m")
        // Three seconds: the first drawing, then redraws each second as the hold counts down.
        let result = try await run(
            ServeProcess.script, try server.onATerminal(waitFor: "v2", timeout: "3s"), timeout: .seconds(30),
            installHint: ServeProcess.scriptHint)
        #expect(result.status == 4, "\(result.stdout)")
        #expect(result.stdout.contains("[###"), "a progress bar of the canary weight: \(result.stdout)")
        #expect(result.stdout.contains("\u{1B}[2K") && result.stdout.contains("A\r"), "redrawn in place")
        #expect(result.stdout.contains("stage 1/2 canary"), "the stage")
        #expect(result.stdout.contains("s left"), "the time left in the hold: \(result.stdout)")
        #expect(result.stdout.contains("budget=0.9 pass"), "the last value of each check: \(result.stdout)")
    }

    @Test
    func waitSurvivesAServerCrashAndStillExitsWithTheVerdict() async throws {
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        let server = try await ServeProcess.start()
        defer { server.stop() }
        try await server.applyBehind(caddy, hold: "3s")
        // On a terminal, so the CLI re-reads the rollout every second, also while the server is down.
        let waiter = try ManagedProcess(
            name: "sluice-wait", executable: ServeProcess.script,
            arguments: try server.onATerminal(waitFor: "v2", timeout: "60s"),
            directory: server.directory, installHint: ServeProcess.scriptHint)
        defer { waiter.stop() }
        try await waitUntil("the rollout to hold its first stage", timeout: .seconds(30)) {
            try await runSluice(["status", "web/search"] + server.tokenArgs(.viewer)).stdout.contains("1/2 canary")
        }
        server.process.stop(signal: SIGKILL)
        // Five reconnect notes: at least four backoffs (≥ 0.2 + 0.4 + 0.8 + 1.6 s with jitter) have passed, so
        // some of the redraws the CLI makes every second met a dead server.
        try await waitUntil("the CLI to retry five times", timeout: .seconds(30)) {
            guard waiter.isRunning else {
                throw SupportError("the CLI gave up while the server was down: \(waiter.logTail())")
            }
            return waiter.logTail(1 << 20).components(separatedBy: "reconnecting after event #").count > 5
        }
        try await server.startAgain()
        try await waitUntil("the verdict", timeout: .seconds(60)) { !waiter.isRunning }
        #expect(waiter.process.terminationStatus == 0, "\(waiter.logTail())")
        #expect(waiter.logTail().contains("succeeded: v2 is stable"), "\(waiter.logTail())")
    }

    @Test
    func unreachableServerAndBadUsage() async throws {
        let port = try freePort()
        let dir = try makeTemporaryDirectory("sluice-cli-usage")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "token".write(toFile: dir + "/t", atomically: true, encoding: .utf8)
        let down = try await runSluice(["status", "--server", "http://127.0.0.1:\(port)", "--token-file", dir + "/t"])
        #expect(down.status == 3)
        #expect(down.stderr.contains("cannot reach"))
        #expect(down.stderr.split(separator: "\n").count == 1, "one clear line: \(down.stderr)")
        // Following needs a first connection: without one it is exit 3 at once, not a reconnect loop.
        let follow = try await runSluice(
            ["events", "--follow", "--server", "http://127.0.0.1:\(port)", "--token-file", dir + "/t"])
        #expect(follow.status == 3 && follow.stderr.contains("cannot reach"), "\(follow.stderr)")
        #expect(follow.stderr.split(separator: "\n").count == 1, "one clear line: \(follow.stderr)")
        #expect(try await runSluice(["rollout", "start", "x"]).status == 64, "--version is required")
        let noServer = try await runSluice(["status", "--token-file", dir + "/t"])
        #expect(noServer.status == 64 || ProcessInfo.processInfo.environment["SLUICE_SERVER"] != nil)
        #expect(try await runSluice(["rollout", "start", "a/b/c", "--version", "v", "--server", "http://127.0.0.1:1"]).status == 64)
    }

    @Test
    func theAPIServesTLSAndTheCLIVerifiesIt() async throws {
        let server = try await ServeProcess.start(tls: true)
        defer { server.stop() }
        let viewer = server.tokenArgs(.viewer)
        let verified = try await runSluice(["status"] + viewer)
        #expect(verified.status == 0, "\(verified.stderr)")
        let unverified = try await runSluice(["status", "--server", server.url, "--token-file", server.directory + "/viewer.token"])
        #expect(unverified.status == 3, "a certificate from an unknown CA is refused: \(unverified.stdout)")
        #expect(unverified.stderr.contains("cannot reach"))
    }

    @Test
    func serveRejectsABadConfigWithFileAndLine() async throws {
        let dir = try makeTemporaryDirectory("sluice-serve-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "tokensFile: tokens.yaml\nlisten: nowhere\n".write(toFile: dir + "/sluice.yaml", atomically: true, encoding: .utf8)
        try "tokens: []\n".write(toFile: dir + "/tokens.yaml", atomically: true, encoding: .utf8)
        let result = try await runSluice(["serve", "--config", dir + "/sluice.yaml"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("sluice.yaml:2:"), "\(result.stderr)")
    }
}

/// `sluice serve` on a free port with one token per role, a temp state file, and nothing else running.
final class ServeProcess: @unchecked Sendable {
    private(set) var process: ManagedProcess
    let directory: String
    let url: String

    /// Starts the server; `prepare` runs first with the directory that will hold the state file (`state.db`).
    /// `store` is sluice.yaml's store setting (a `statePath`, or a `database` and its password file).
    /// `config` is added to sluice.yaml; `softOpenFileLimit` is the soft `ulimit -n` the server starts with.
    static func start(
        tls: Bool = false, config: String = "", store: String = "statePath: state.db\n", softOpenFileLimit: Int? = nil,
        prepare: (_ directory: String) async throws -> Void = { _ in }
    ) async throws -> ServeProcess {
        let dir = try makeTemporaryDirectory("sluice-serve")
        do {
            try await prepare(dir)
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
        let port = try freePort()
        var tlsLine = ""
        if tls {
            let made = try await run(
                "/usr/bin/openssl",
                ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/tls.key", "-out", dir + "/tls.crt",
                 "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                in: dir, installHint: "apt-get install -y openssl")
            guard made.status == 0 else { throw SupportError("openssl: \(made.stderr)") }
            tlsLine = "tls: {cert: tls.crt, key: tls.key}\n"
        }
        var tokens = "tokens:\n"
        for role in Role.allCases {
            tokens += "  - {name: \(role.rawValue)-bot, role: \(role.rawValue), sha256: \(TokenHash.hex(token(role)))}\n"
            try token(role).write(toFile: dir + "/\(role.rawValue).token", atomically: true, encoding: .utf8)
        }
        try tokens.write(toFile: dir + "/tokens.yaml", atomically: true, encoding: .utf8)
        try ("listen: 127.0.0.1:\(port)\ntokensFile: tokens.yaml\n" + store + tlsLine + config)
            .write(toFile: dir + "/sluice.yaml", atomically: true, encoding: .utf8)
        let server = ServeProcess(
            process: try launch(dir, softOpenFileLimit: softOpenFileLimit), directory: dir,
            url: (tls ? "https" : "http") + "://127.0.0.1:\(port)", port: port, tls: tls, softOpenFileLimit: softOpenFileLimit)
        do {
            try await server.waitUntilReady()
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    private static func launch(_ directory: String, softOpenFileLimit: Int?) throws -> ManagedProcess {
        let serve = [try sluiceBinary(), "serve", "--config", directory + "/sluice.yaml"]
        guard let softOpenFileLimit else {
            return try ManagedProcess(
                name: "sluice-serve", executable: serve[0], arguments: Array(serve.dropFirst()), directory: directory,
                installHint: "swift build")
        }
        // The shell sets the soft limit and is replaced by the server (exec), so signals reach the server.
        return try ManagedProcess(
            name: "sluice-serve", executable: "/bin/sh",
            arguments: ["-c", "ulimit -S -n \(softOpenFileLimit) && exec \"$@\"", "sh"] + serve, directory: directory,
            installHint: "a POSIX shell at /bin/sh")
    }

    private func waitUntilReady() async throws {
        let process = process
        do {
            try await waitUntil("sluice serve to be ready", timeout: .seconds(30)) {
                guard process.isRunning else { throw SupportError("sluice serve exited:\n\(process.logTail())") }
                return try await runSluice(["status"] + tokenArgs(.viewer)).status == 0
            }
        } catch {
            throw SupportError("\(error)\n\(process.logTail())")
        }
    }

    /// Stops the server with `signal` (SIGKILL: a crash) and starts it again on the same port and state file.
    func restart(signal: Int32) async throws {
        process.stop(signal: signal)
        try await startAgain()
    }

    /// Starts the server again after `process.stop`, on the same port and state file.
    func startAgain() async throws {
        process = try Self.launch(directory, softOpenFileLimit: softOpenFileLimit)
        try await waitUntilReady()
    }

    let tls: Bool
    let port: Int
    let softOpenFileLimit: Int?

    init(process: ManagedProcess, directory: String, url: String, port: Int, tls: Bool, softOpenFileLimit: Int?) {
        self.process = process
        self.directory = directory
        self.url = url
        self.port = port
        self.tls = tls
        self.softOpenFileLimit = softOpenFileLimit
    }

    static func token(_ role: Role) -> String { "cli-\(role.rawValue)-token" }

    func tokenArgs(_ role: Role) -> [String] {
        ["--server", url, "--token-file", directory + "/\(role.rawValue).token"]
            + (tls ? ["--ca-file", directory + "/tls.crt"] : [])
    }

    func stop() {
        process.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// util-linux's `script`: runs a command on a pseudo-terminal, as a person at a shell would.
    static let script = "/usr/bin/script"
    static let scriptHint = "apt-get install -y bsdutils (util-linux's script)"

    /// Arguments for `script` running `sluice rollout start web/search --version V --wait --timeout T` as CI.
    func onATerminal(waitFor version: String, timeout: String) throws -> [String] {
        let arguments = ["rollout", "start", "web/search", "--version", version, "--wait", "--timeout", timeout]
        let command = ([try sluiceBinary()] + arguments + tokenArgs(.ci)).map { "'\($0)'" }.joined(separator: " ")
        return ["-qec", command, "/dev/null"]
    }

    /// Real Caddy splitting the traffic between two backends; a third static backend answers `{"value": 0.9}`,
    /// the web provider's passing value of the `budget` check.
    static func caddyWithPassingCheck() async throws -> CaddyServer {
        try await CaddyServer.start(backendBodies: ["stable", "canary", #"{"value": 0.9}"#]) { dials in
            CaddyServer.weightedProxy(id: "search", dials: Array(dials.prefix(2)), weights: [100, 0])
        }
    }

    /// Real Caddy with a passing check, `sluice serve`, web/search applied behind it (each stage holding `hold`)
    /// and a rollout of `version` started by CI; `config` is added to sluice.yaml. The caller stops both.
    static func rolloutBehindCaddy(
        version: String, hold: String = "1m", config: String = ""
    ) async throws -> (CaddyServer, ServeProcess) {
        let caddy = try await caddyWithPassingCheck()
        do {
            let server = try await start(config: config)
            do {
                try await server.applyBehind(caddy, hold: hold)
                let started = try await runSluice(["rollout", "start", "web/search", "--version", version] + server.tokenArgs(.ci))
                guard started.status == 0 else { throw SupportError("rollout start: \(started.stderr)") }
                return (caddy, server)
            } catch {
                server.stop()
                throw error
            }
        } catch {
            caddy.stop()
            throw error
        }
    }

    /// Applies web/search behind `caddy` (from `caddyWithPassingCheck`) with each stage holding `hold`.
    func applyBehind(_ caddy: CaddyServer, hold: String) async throws {
        let path = directory + "/search.yaml"
        try Self.strategy(
            weight: 10, adminURL: caddy.adminURL, stable: caddy.backendDials[0], canary: caddy.backendDials[1],
            hold: hold, metricsURL: "http://\(caddy.backendDials[2])/budget"
        ).write(toFile: path, atomically: true, encoding: .utf8)
        let applied = try await runSluice(["apply", "-f", path] + tokenArgs(.release))
        guard applied.status == 0 else { throw SupportError("apply failed: \(applied.stderr)") }
    }

    /// An `upstreams` strategy behind Caddy; by default an admin API that is not running, so effects
    /// fail and are retried and the rollout stays where it is until a human acts. `check` replaces the web
    /// provider and its `budget` check (a provider `slo` and a check, each as its YAML flow mapping).
    static func strategy(
        weight: Int, adminURL: String = "http://127.0.0.1:9", stable: String = "127.0.0.1:9", canary: String = "127.0.0.1:10",
        hold: String = "1m", metricsURL: String = "http://127.0.0.1:9/budget",
        check: (provider: String, check: String)? = nil, webhook: String? = nil
    ) -> String {
        let check = check ?? (#"{web: {url: "\#(metricsURL)", jsonPath: value}}"#, "{name: budget, query: search, min: 0.5}")
        let notifications = webhook.map { "  notifications: [{webhook: \"\($0)\"}]\n" } ?? ""
        return """
        apiVersion: sluice.dev/v1
        kind: Strategy
        metadata:
          name: search
          namespace: web
        spec:
          target:
            upstreams:
              stable: ["\(stable)"]
              canary: ["\(canary)"]
          traffic:
            caddy:
              adminURL: \(adminURL)
              handlerID: search
          stages:
            - {name: canary, weight: \(weight), hold: \(hold)}
            - {name: full, weight: 100, hold: \(hold)}
          analysis:
            interval: 1s
            providers:
              slo: \(check.provider)
            checks:
              - \(check.check)
        \(notifications)
        """
    }
}
