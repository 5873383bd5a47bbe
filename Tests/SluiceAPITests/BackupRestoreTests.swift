import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `sluice backup` with the real binary during a live rollout behind real Caddy, then the documented restore
/// (docs/operations.md): stop, put the copy in place of statePath, start. The rollout and its events read back.
@Suite struct BackupRestoreTests {
    static func events(_ server: ServeProcess) async throws -> [EventView] {
        let listed = try await runSluice(["events", "web/search", "-o", "json"] + server.tokenArgs(.viewer))
        guard listed.status == 0 else { throw SupportError("sluice events: \(listed.stderr)") }
        return try listed.stdout.split(separator: "\n").map {
            try JSONDecoder().decode(EventView.self, from: Data($0.utf8))
        }
    }

    @Test func aBackupDuringALiveRolloutRestoresIntoANewServerWithTheRolloutAndItsEvents() async throws {
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        let server = try await ServeProcess.start()
        defer { server.stop() }
        try await server.applyBehind(caddy, hold: "10m")
        let started = try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci))
        #expect(started.status == 0, "\(started.stderr)")
        try await waitUntil("the canary to take traffic", timeout: .seconds(30)) {
            try await Self.events(server).contains { $0.type == "TrafficShifted" }
        }

        let backups = try makeTemporaryDirectory("sluice-backups")
        defer { try? FileManager.default.removeItem(atPath: backups) }
        let backup = try await runSluice(
            ["backup", "--config", server.directory + "/sluice.yaml", "--to", backups + "/sluice.db"])
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(backup.stdout.contains("backed up \(server.directory)/state.db to \(backups)/sluice.db: 1 rollout"))
        let lastSeq = try #require(
            backup.stdout.firstMatch(of: /events up to seq (\d+)/).flatMap { Int64($0.1) }, "\(backup.stdout)")
        #expect(server.process.isRunning, "the server ran on during the backup")

        // The rollout goes on after the backup (paused by on-call): the copy holds the log up to its seq only.
        let paused = try await runSluice(["pause", "web/search"] + server.tokenArgs(.oncall))
        #expect(paused.status == 0, "\(paused.stderr)")
        let live = try await Self.events(server)
        #expect(live.last?.type == "Paused" && live.last!.seq > lastSeq)
        let status = try await runSluice(["status", "web/search", "-o", "json"] + server.tokenArgs(.viewer))
        let rollout = try #require(
            try JSONDecoder().decode(RolloutList.self, from: Data(status.stdout.utf8)).rollouts.first)
        #expect(rollout.phase == "Paused")
        server.process.stop()

        let restored = try await ServeProcess.start { directory in
            try FileManager.default.copyItem(atPath: backups + "/sluice.db", toPath: directory + "/state.db")
        }
        defer { restored.stop() }
        let restoredStatus = try await runSluice(["status", "web/search", "-o", "json"] + restored.tokenArgs(.viewer))
        let back = try #require(
            try JSONDecoder().decode(RolloutList.self, from: Data(restoredStatus.stdout.utf8)).rollouts.first)
        #expect(back.id == rollout.id)
        #expect(back.version == "v2")
        #expect(back.phase == "Progressing", "as it was when the copy was taken; the restored server drives it on")
        let restoredEvents = try await Self.events(restored)
        #expect(restoredEvents.filter { $0.seq <= lastSeq } == live.filter { $0.seq <= lastSeq })
        #expect(!restoredEvents.contains { $0.type == "Paused" }, "what happened after the backup is not in it")
        #expect(restoredEvents.map(\.seq).prefix(Int(lastSeq)) == ArraySlice(1...lastSeq), "no gap")
    }
}

extension BackupRestoreTests {
    @Test func aBackupOfAPostgreSQLStoreSaysToUsePgDumpAndOfNoStoreSaysWhere() async throws {
        let directory = try makeTemporaryDirectory("sluice-backup-cli")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "tokens: []\n".write(toFile: directory + "/tokens.yaml", atomically: true, encoding: .utf8)
        try "tokensFile: tokens.yaml\ndatabase: postgres://sluice@127.0.0.1:5432/sluice\n"
            .write(toFile: directory + "/pg.yaml", atomically: true, encoding: .utf8)
        let postgres = try await runSluice(["backup", "--config", directory + "/pg.yaml", "--to", directory + "/b.db"])
        #expect(postgres.status == 1)
        #expect(postgres.stderr.contains("the store is PostgreSQL; back it up with pg_dump"), "\(postgres.stderr)")

        let nothing = try await runSluice(["backup", "--state", directory + "/none.db", "--to", directory + "/b.db"])
        #expect(nothing.status == 1)
        #expect(nothing.stderr.contains("sluice backup: there is no store at \(directory)/none.db"), "\(nothing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/b.db"))
    }
}
