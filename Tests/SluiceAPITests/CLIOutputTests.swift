import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing
import Yams

/// The `sluice` binary as a subprocess against a running `sluice serve`: what it prints, and the rough edges of
/// issue #17.6 and #18.6.
struct CLIOutputTests {
    /// Whether `text` holds a control character other than the newlines the CLI writes.
    static func hasRawControls(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0 != "\n" && ($0.value < 0x20 || (0x7F...0x9F).contains($0.value)) }
    }

    @Test
    func controlCharactersInTheServersTextReachTheTerminalVisiblyEscaped() async throws {
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let strategy = server.directory + "/search.yaml"
        try ServeProcess.strategy(weight: 10).write(toFile: strategy, atomically: true, encoding: .utf8)
        #expect(try await runSluice(["apply", "-f", strategy] + server.tokenArgs(.release)).status == 0)

        // A version that retitles the window, rings the bell, returns to column 0 and turns the text red (C1 CSI):
        // refused before anything is sent (a version has an OCI tag's characters), and the refusal stays inert.
        let version = "v2\u{1B}]0;owned\u{07}\r\u{9B}31m"
        let refusedVersion = try await runSluice(
            ["rollout", "start", "web/search", "--version", version] + server.tokenArgs(.ci))
        #expect(refusedVersion.status == 64, "\(refusedVersion.stderr)")
        let started = try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci))
        #expect(started.status == 0, "\(started.stderr)")
        let reason = "bad\u{1B}[2K\rall good"
        let rolledBack = try await runSluice(
            ["rollback", "web/search", "--reason", reason, "--wait", "1s"] + server.tokenArgs(.oncall))
        // No router answers here, so the rollback is requested and not confirmed (exit 5): what matters is the text.
        #expect(rolledBack.status == 5, "\(rolledBack.stderr)")
        #expect(rolledBack.stdout.contains("version v2) requested"), "\(rolledBack.stdout)")

        let viewer = server.tokenArgs(.viewer)
        let events = try await runSluice(["events", "web/search"] + viewer)
        #expect(events.status == 0, "\(events.stderr)")
        // From Pending or Progressing, as fast as the canary was deployed.
        #expect(events.stdout.contains(#": bad\u001B[2K\u000Dall good;"#), "\(events.stdout)")
        let table = try await runSluice(["status", "web/search"] + viewer)
        #expect(table.stdout.contains("RollingBack"), "\(table.stdout)")
        let yaml = try await runSluice(["status", "web/search", "-o", "yaml"] + viewer)
        let json = try await runSluice(["events", "web/search", "-o", "json"] + viewer)
        for output in [refusedVersion, started, rolledBack, events, table, yaml, json] {
            #expect(!Self.hasRawControls(output.stdout), "\(output.stdout.debugDescription)")
            #expect(!Self.hasRawControls(output.stderr), "\(output.stderr.debugDescription)")
        }
        // JSON stays valid and says exactly what the server stored.
        let decoded = json.stdout.split(separator: "\n").map { try? JSONDecoder().decode(EventView.self, from: Data($0.utf8)) }
        #expect(decoded.allSatisfy { $0 != nil }, "\(json.stdout)")
        #expect(decoded.contains { $0?.type == "RollbackStarted" && $0?.message.contains(reason) == true })

        // An error from the server goes to stderr the same way.
        let refused = try await runSluice(
            ["rollout", "start", "web/search\u{1B}[31m", "--version", "v3"] + server.tokenArgs(.ci))
        #expect(refused.status != 0)
        #expect(!Self.hasRawControls(refused.stderr), "\(refused.stderr.debugDescription)")
    }

    @Test
    func versionComesFromTheBuildAndTheServerSaysTheSame() async throws {
        let printed = try await runSluice(["--version"])
        #expect(printed.status == 0, "\(printed.stderr)")
        #expect(printed.stdout == SluiceVersion.current + "\n")
        let server = try await ServeProcess.start()
        defer { server.stop() }
        for path in ["/version", "/healthz"] {
            let answer = try await run("/usr/bin/curl", ["-sf", server.url + path])
            let body = try JSONDecoder().decode([String: String].self, from: Data(answer.stdout.utf8))
            #expect(body["version"] == SluiceVersion.current, "\(path): \(answer.stdout)")
        }
        let manifest = try String(contentsOfFile: repositoryRoot() + "/manifests/base/kustomization.yaml", encoding: .utf8)
        #expect(manifest.contains("newTag: \(SluiceVersion.current)\n"), "the release image carries the same version")
    }

    @Test
    func anUnknownStrategyIsExit3WithThe404AndABareNameSuggestsItsNamespace() async throws {
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let strategy = server.directory + "/search.yaml"
        try ServeProcess.strategy(weight: 10).write(toFile: strategy, atomically: true, encoding: .utf8)
        #expect(try await runSluice(["apply", "-f", strategy] + server.tokenArgs(.release)).status == 0)
        let viewer = server.tokenArgs(.viewer)

        let unknown = try await runSluice(["events", "nosuch"] + viewer)
        #expect(unknown.status == 3, "\(unknown.stdout)")
        #expect(unknown.stderr == "sluice: server answered 404 not_found: no strategy default/nosuch\n")
        let followed = try await runSluice(["events", "web/nosuch", "--follow"] + viewer)
        #expect(followed.status == 3 && followed.stderr.contains("404"), "\(followed.stderr)")
        #expect(try await runSluice(["events", "web/search"] + viewer).status == 0)

        // `search` is default/search, which does not exist; web/search does.
        let hint = "no strategy default/search; did you mean web/search?"
        for arguments in [
            ["events", "search"] + viewer, ["status", "search"] + viewer,
            ["rollout", "start", "search", "--version", "v2"] + server.tokenArgs(.ci),
            ["pause", "search"] + server.tokenArgs(.oncall),
        ] {
            let result = try await runSluice(arguments)
            #expect(result.status == 3, "\(arguments[0]): \(result.stdout)")
            #expect(result.stderr.contains("404") && result.stderr.contains(hint), "\(arguments[0]): \(result.stderr)")
        }
    }

    @Test
    func eventsSinceAndTailAreAnsweredByTheServerAndStagesCountFromOne() async throws {
        // Real Caddy, so the rollback ends (RolledBack) and the log stops growing while it is read.
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        let server = try await ServeProcess.start()
        defer { server.stop() }
        try await server.applyBehind(caddy, hold: "1m")
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci)).status == 0)
        let viewer = server.tokenArgs(.viewer)
        try await waitUntil("the first stage", timeout: .seconds(30)) {
            try await runSluice(["status", "web/search"] + viewer).stdout.contains("1/2 canary")
        }
        let rolledBack = try await runSluice(
            ["rollback", "web/search", "--reason", "test", "--wait", "20s"] + server.tokenArgs(.oncall),
            timeout: .seconds(40))
        #expect(rolledBack.status == 0, "\(rolledBack.stderr)")
        try await waitUntil("the rollout to end", timeout: .seconds(30)) {
            try await runSluice(["status", "web/search"] + viewer).stdout.contains("RolledBack")
        }
        func seqs(_ arguments: [String]) async throws -> [Int64] {
            let result = try await runSluice(["events", "web/search", "-o", "json"] + arguments + viewer)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            return result.stdout.split(separator: "\n").compactMap {
                try? JSONDecoder().decode(EventView.self, from: Data($0.utf8)).seq
            }
        }
        let all = try await seqs([])
        #expect(all.count >= 4, "\(all)")
        #expect(try await seqs(["--tail", "2"]) == Array(all.suffix(2)))
        #expect(try await seqs(["--tail", "10000"]) == all)
        #expect(try await seqs(["--since", "\(all[1])"]) == Array(all.dropFirst()), "a seq: from that event on")
        #expect(try await seqs(["--since", "1h"]) == all)
        #expect(try await seqs(["--since", "0s"]) == [], "nothing has happened since now")
        #expect(try await seqs(["--since", "1h", "--tail", "1"]) == [all.last!])
        #expect(try await runSluice(["events", "--since", "yesterday"] + viewer).status == 64)
        #expect(try await runSluice(["events", "--tail", "0"] + viewer).status == 64)

        // Server side: the answer holds only the tail, not the log for the CLI to cut.
        let token = try String(contentsOfFile: server.directory + "/viewer.token", encoding: .utf8)
        let page = try await run(
            "/usr/bin/curl",
            ["-sf", "-H", "Authorization: Bearer \(token)", server.url + "/v1/events?strategy=web/search&tail=1"])
        let list = try JSONDecoder().decode(EventList.self, from: Data(page.stdout.utf8))
        #expect(list.events.map(\.seq) == [all.last!], "\(page.stdout)")

        // The text form counts stages from 1, as `status` does (stage 1/2 canary); JSON keeps the index.
        let text = try await runSluice(["events", "web/search"] + viewer)
        #expect(text.stdout.contains("StageStarted  stage=1 "), "\(text.stdout)")
        #expect(!text.stdout.contains("stage=0"), "\(text.stdout)")

        // --tail with --follow: the newest event, then the new ones, none missed.
        let follower = try ManagedProcess(
            name: "sluice-events-tail", executable: try sluiceBinary(),
            arguments: ["events", "web/search", "--tail", "1", "--follow", "-o", "json"] + viewer,
            directory: server.directory, installHint: "swift build")
        defer { follower.stop() }
        func followed() -> [Int64] {
            follower.logTail(1 << 20).split(separator: "\n").compactMap {
                $0.hasPrefix("{") ? (try? JSONDecoder().decode(EventView.self, from: Data($0.utf8)))?.seq : nil
            }
        }
        try await waitUntil("the follower to print the newest event", timeout: .seconds(20)) { followed() == [all.last!] }
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v3"] + server.tokenArgs(.ci)).status == 0)
        try await waitUntil("the follower to print the new events", timeout: .seconds(20)) { followed().count >= 2 }
        let shown = followed()
        let log = try await seqs([])
        #expect(Array(log.drop { $0 < all.last! }.prefix(shown.count)) == shown, "the newest, then every new one in order")
    }

    @Test
    func rolloutListPagesTheHistoryAndRolloutGetShowsOne() async throws {
        // Real Caddy, so each rollback completes and the next rollout can start.
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        let server = try await ServeProcess.start()
        defer { server.stop() }
        try await server.applyBehind(caddy, hold: "1m")
        let ci = server.tokenArgs(.ci)
        for version in ["v2", "v3", "v4"] {
            let started = try await runSluice(["rollout", "start", "web/search", "--version", version] + ci)
            #expect(started.status == 0, "\(started.stderr)")
            guard version != "v4" else { break }
            let rolledBack = try await runSluice(
                ["rollback", "web/search", "--reason", "next", "--wait", "20s"] + server.tokenArgs(.oncall),
                timeout: .seconds(40))
            #expect(rolledBack.status == 0, "\(rolledBack.stderr)")
        }
        let viewer = server.tokenArgs(.viewer)
        let first = try await runSluice(["rollout", "list", "web/search", "--limit", "2"] + viewer)
        #expect(first.status == 0, "\(first.stderr)")
        let rows = first.stdout.split(separator: "\n")
        #expect(rows.count == 3 && rows[0].hasPrefix("ROLLOUT"), "\(first.stdout)")
        try #require(rows.count == 3)
        #expect(rows[1].contains("v4") && !rows[1].contains("RolledBack"), "\(first.stdout)")
        #expect(rows[2].contains("v3") && rows[2].contains("RolledBack"), "newest first: \(first.stdout)")
        let next = try #require(first.stderr.components(separatedBy: "--after ").last?.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(first.stderr.contains("more rollouts follow: sluice rollout list web/search --limit 2 --after "))
        let second = try await runSluice(["rollout", "list", "web/search", "--limit", "2", "--after", next] + viewer)
        #expect(second.status == 0 && second.stderr.isEmpty, "\(second.stderr)")
        #expect(second.stdout.split(separator: "\n").count == 2 && second.stdout.contains("v2"), "\(second.stdout)")
        let json = try await runSluice(["rollout", "list", "-o", "json"] + viewer)
        let all = try JSONDecoder().decode(RolloutList.self, from: Data(json.stdout.utf8))
        #expect(all.rollouts.map(\.version) == ["v4", "v3", "v2"])
        #expect(try await runSluice(["rollout", "list", "search"] + viewer).stderr.contains("did you mean web/search?"))

        let id = all.rollouts[1].id
        let shown = try await runSluice(["rollout", "get", id] + viewer)
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("rollout: \(id)\n") && shown.stdout.contains("version: v3\n"), "\(shown.stdout)")
        #expect(shown.stdout.contains("phase: RolledBack\n") && shown.stdout.contains("ended because: "), "\(shown.stdout)")
        let asJSON = try await runSluice(["rollout", "get", id, "-o", "json"] + viewer)
        #expect(try JSONDecoder().decode(RolloutView.self, from: Data(asJSON.stdout.utf8)) == all.rollouts[1])
        let missing = try await runSluice(["rollout", "get", "r-nosuch"] + viewer)
        #expect(missing.status == 3 && missing.stderr.contains("404"), "\(missing.stderr)")
    }

    @Test
    func withoutATokenTheCLISaysHowToPassOneBeforeCallingTheServer() async throws {
        // Nothing listens on this port: had the CLI called the server, it would say it cannot reach it.
        let port = try freePort()
        let result = try await runSluice(["status", "--server", "http://127.0.0.1:\(port)"])
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains("no API token: pass --token-file FILE, or set SLUICE_TOKEN"), "\(result.stderr)")
        let dir = try makeTemporaryDirectory("sluice-empty-token")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "\n".write(toFile: dir + "/t", atomically: true, encoding: .utf8)
        let empty = try await runSluice(["status", "--server", "http://127.0.0.1:\(port)", "--token-file", dir + "/t"])
        #expect(empty.status == 64 && empty.stderr.contains("the token file \(dir)/t is empty"), "\(empty.stderr)")
    }

    @Test
    func statusAsYAMLWritesPlainDecimalsAndApplyDryRunDiffsOldBeforeNew() async throws {
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        let server = try await ServeProcess.start()
        defer { server.stop() }
        try await server.applyBehind(caddy, hold: "1m")
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci)).status == 0)
        let viewer = server.tokenArgs(.viewer)
        try await waitUntil("a sample of the check", timeout: .seconds(30)) {
            try await runSluice(["status", "web/search"] + viewer).stdout.contains("budget=0.9 pass")
        }
        let yaml = try await runSluice(["status", "web/search", "-o", "yaml"] + viewer)
        #expect(yaml.status == 0, "\(yaml.stderr)")
        #expect(yaml.stdout.contains("value: 0.9\n"), "\(yaml.stdout)")
        #expect(yaml.stdout.contains("holdSeconds: 60\n"), "\(yaml.stdout)")
        #expect(!yaml.stdout.contains("e+") && !yaml.stdout.contains("e-"), "no scientific notation: \(yaml.stdout)")
        let json = try await runSluice(["status", "web/search", "-o", "json"] + viewer)
        let fromJSON = try JSONDecoder().decode(RolloutList.self, from: Data(json.stdout.utf8))
        let fromYAML = try YAMLDecoder().decode(RolloutList.self, from: yaml.stdout)
        #expect(fromYAML.rollouts.first?.checks == fromJSON.rollouts.first?.checks)

        let path = server.directory + "/search.yaml"
        let source = try String(contentsOfFile: path, encoding: .utf8)
        try source.replacingOccurrences(of: "weight: 10,", with: "weight: 20,").write(toFile: path, atomically: true, encoding: .utf8)
        let dry = try await runSluice(["apply", "-f", path, "--dry-run"] + server.tokenArgs(.release))
        #expect(dry.status == 0, "\(dry.stderr)")
        let removed = try #require(dry.stdout.range(of: "\n- "), "\(dry.stdout)")
        let added = try #require(dry.stdout.range(of: "\n+ "), "\(dry.stdout)")
        #expect(removed.lowerBound < added.lowerBound, "- before +: \(dry.stdout)")

        let help = try await runSluice(["rollback", "--help"])
        #expect(help.stdout.contains("(default: 30s)"), "\(help.stdout)")
        #expect(!help.stdout.contains("DurationArgument"), "\(help.stdout)")
    }

    @Test
    func applyOfADirectoryReportsAnEmptyFileAsValidateDoes() async throws {
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let dir = server.directory + "/strategies"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try ServeProcess.strategy(weight: 10).write(toFile: dir + "/a.yaml", atomically: true, encoding: .utf8)
        try "# nothing here yet\n".write(toFile: dir + "/b.yaml", atomically: true, encoding: .utf8)
        let line = "\(dir)/b.yaml:1:1: error: no strategy document in this file\n"
        let validated = try await runSluice(["validate", dir])
        #expect(validated.status == 1 && validated.stderr.contains(line), "\(validated.stderr)")
        let applied = try await runSluice(["apply", "-f", dir] + server.tokenArgs(.release))
        #expect(applied.status == 1, "\(applied.stdout)")
        #expect(applied.stderr.contains(line), "\(applied.stderr)")
        #expect(applied.stdout.contains("strategy web/search created"), "the other file is still applied: \(applied.stdout)")
    }

    @Test
    func aStrategyWithUnnamedStagesIsAppliedAndShownAsStageN() async throws {
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let path = server.directory + "/search.yaml"
        try ServeProcess.strategy(weight: 10).replacingOccurrences(of: "{name: canary, weight:", with: "{weight:")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let applied = try await runSluice(["apply", "-f", path] + server.tokenArgs(.release))
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci)).status == 0)
        let status = try await runSluice(["status", "web/search"] + server.tokenArgs(.viewer))
        #expect(status.stdout.contains("1/2 stage-1"), "\(status.stdout)")
    }
}
