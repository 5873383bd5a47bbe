import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing

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

        // A version that retitles the window, rings the bell, returns to column 0 and turns the text red (C1 CSI).
        let version = "v2\u{1B}]0;owned\u{07}\r\u{9B}31m"
        let shown = #"v2\u001B]0;owned\u0007\u000D\u009B31m"#
        let started = try await runSluice(["rollout", "start", "web/search", "--version", version] + server.tokenArgs(.ci))
        #expect(started.status == 0, "\(started.stderr)")
        #expect(started.stdout.contains("to \(shown) started"), "\(started.stdout)")
        let reason = "bad\u{1B}[2K\rall good"
        let rolledBack = try await runSluice(
            ["rollback", "web/search", "--reason", reason, "--wait", "1s"] + server.tokenArgs(.oncall))
        #expect(rolledBack.status == 0, "\(rolledBack.stderr)")
        #expect(rolledBack.stdout.contains("version \(shown)) requested"), "\(rolledBack.stdout)")

        let viewer = server.tokenArgs(.viewer)
        let events = try await runSluice(["events", "web/search"] + viewer)
        #expect(events.status == 0, "\(events.stderr)")
        #expect(events.stdout.contains(#"from Pending: bad\u001B[2K\u000Dall good;"#), "\(events.stdout)")
        let table = try await runSluice(["status", "web/search"] + viewer)
        #expect(table.stdout.contains(shown), "\(table.stdout)")
        let yaml = try await runSluice(["status", "web/search", "-o", "yaml"] + viewer)
        let json = try await runSluice(["events", "web/search", "-o", "json"] + viewer)
        for output in [started, rolledBack, events, table, yaml, json] {
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
        let manifest = try String(contentsOfFile: repositoryRoot() + "/manifests/40-deployment.yaml", encoding: .utf8)
        #expect(manifest.contains("image: sluice:\(SluiceVersion.current)\n"), "the release image carries the same version")
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
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let strategy = server.directory + "/search.yaml"
        try ServeProcess.strategy(weight: 10).write(toFile: strategy, atomically: true, encoding: .utf8)
        #expect(try await runSluice(["apply", "-f", strategy] + server.tokenArgs(.release)).status == 0)
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci)).status == 0)
        let oncall = server.tokenArgs(.oncall)
        #expect(try await runSluice(["pause", "web/search"] + oncall).status == 0)
        #expect(try await runSluice(["resume", "web/search"] + oncall).status == 0)
        #expect(try await runSluice(["pause", "web/search"] + oncall).status == 0)
        let viewer = server.tokenArgs(.viewer)
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
            "/usr/bin/curl", ["-sf", "-H", "Authorization: Bearer \(token)", server.url + "/v1/events?tail=1"])
        let list = try JSONDecoder().decode(EventList.self, from: Data(page.stdout.utf8))
        #expect(list.events.map(\.seq) == [all.last!], "\(page.stdout)")

        // The text form counts stages from 1, as `status` does (stage 1/2 canary); JSON keeps the index.
        let text = try await runSluice(["events", "web/search", "--tail", "1"] + viewer)
        #expect(text.stdout.contains("Paused  stage=1 "), "\(text.stdout)")
        let status = try await runSluice(["status", "web/search"] + viewer)
        #expect(status.stdout.contains("1/2 canary"), "\(status.stdout)")

        // --tail with --follow: the newest event, then the new ones.
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
        #expect(try await runSluice(["resume", "web/search"] + oncall).status == 0)
        try await waitUntil("the follower to print the new event", timeout: .seconds(20)) { followed().count == 2 }
        #expect(followed() == Array(try await seqs([]).suffix(2)))
    }
}
