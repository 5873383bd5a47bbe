import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing

/// `sluice strategy delete` against a real `sluice serve` with its rollout behind a real Caddy.
struct StrategyDeleteTests {
    @Test
    func aStrategyIsDeletedOnlyWhenNoRolloutIsActiveAndItsHistoryStays() async throws {
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        let server = try await ServeProcess.start()
        defer { server.stop() }
        try await server.applyBehind(caddy, hold: "1m")
        let release = server.tokenArgs(.release)
        #expect(try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci)).status == 0)

        let whileActive = try await runSluice(["strategy", "delete", "web/search"] + release)
        #expect(whileActive.status == 3, "\(whileActive.stdout)")
        #expect(whileActive.stderr.contains("409") && whileActive.stderr.contains("active rollout"), "\(whileActive.stderr)")
        let viewer = try await runSluice(["strategy", "delete", "web/search"] + server.tokenArgs(.viewer))
        #expect(viewer.status == 3 && viewer.stderr.contains("403"), "\(viewer.stderr)")

        let rollback = try await runSluice(["rollback", "web/search", "--reason", "retire it"] + server.tokenArgs(.oncall))
        #expect(rollback.status == 0, "\(rollback.stderr)")
        let deleted = try await runSluice(["strategy", "delete", "search", "--server", server.url, "--token-file",
            server.directory + "/release.token"])
        #expect(deleted.status == 3 && deleted.stderr.contains("did you mean web/search?"), "a bare name: \(deleted.stderr)")
        let done = try await runSluice(["strategy", "delete", "web/search"] + release)
        #expect(done.status == 0, "\(done.stderr)")
        #expect(done.stdout.contains("strategy web/search deleted (its last revision was 1)"), "\(done.stdout)")

        // Gone from what is read and started; the event log keeps its history.
        let listed = try await runSluice(["status"] + server.tokenArgs(.viewer))
        #expect(!listed.stdout.contains("web/search"), "\(listed.stdout)")
        let start = try await runSluice(["rollout", "start", "web/search", "--version", "v3"] + server.tokenArgs(.ci))
        #expect(start.status == 3 && start.stderr.contains("404"), "\(start.stderr)")
        let events = try await runSluice(["events", "web/search"] + server.tokenArgs(.viewer))
        #expect(events.status == 0 && events.stdout.contains("RolledBack"), "\(events.stdout)\(events.stderr)")
        let again = try await runSluice(["strategy", "delete", "web/search"] + release)
        #expect(again.status == 3 && again.stderr.contains("404"), "\(again.stderr)")

        // Applied again: created anew, as revision 2 (revision 1 stays what the old rollout ran).
        let applied = try await runSluice(["apply", "-f", server.directory + "/search.yaml"] + release)
        #expect(applied.status == 0 && applied.stdout.contains("created"), "\(applied.stdout)")
        let token = try String(contentsOfFile: server.directory + "/viewer.token", encoding: .utf8)
        let view = try await run(
            "/usr/bin/curl", ["-sf", "-H", "Authorization: Bearer \(token)", server.url + "/v1/strategies/web/search"])
        #expect(view.stdout.replacingOccurrences(of: " ", with: "").contains("\"revision\":2"), "\(view.stdout)")
    }
}
