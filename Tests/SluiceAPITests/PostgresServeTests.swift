import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing

/// The real `sluice serve` on a real PostgreSQL (docs/ha.md): a rollout through real Caddy, read back, and still
/// all there after the server is killed and started again.
struct PostgresServeTests {
    @Test
    func aRolloutOnPostgreSQLIsReadBackAndSurvivesAKilledServer() async throws {
        let cluster = try await PostgresCluster.shared()
        let database = try await cluster.createDatabase()
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        // Short leases: the server started again after a SIGKILL is a new replica, which takes the shards once the
        // killed one's leases expired (docs/ha.md).
        let server = try await ServeProcess.start(
            config: "leaseDuration: 3s\nleaseRenewInterval: 1s\n",
            store: "database: \(cluster.url(database: database))\ndatabasePasswordFile: \(cluster.passwordFile)\n")
        defer { server.stop() }
        try await server.applyBehind(caddy, hold: "1s")
        let waited = try await runSluice(
            ["rollout", "start", "web/search", "--version", "v2", "--wait", "--timeout", "60s"] + server.tokenArgs(.ci),
            timeout: .seconds(90))
        #expect(waited.status == 0, "\(waited.stdout)\n\(waited.stderr)")

        let viewer = server.tokenArgs(.viewer)
        let status = try await runSluice(["status", "web/search", "-o", "json"] + viewer)
        let rollout = try JSONDecoder().decode(RolloutList.self, from: Data(status.stdout.utf8)).rollouts.first
        #expect(rollout?.phase == "Succeeded" && rollout?.version == "v2", "\(status.stdout)")
        let events = try await runSluice(["events", "web/search", "-o", "json"] + viewer)
        let log = events.stdout.split(separator: "\n").compactMap {
            try? JSONDecoder().decode(EventView.self, from: Data($0.utf8))
        }
        #expect(log.first?.type == "RolloutStarted" && log.last?.type == "Promoted", "\(events.stdout)")
        #expect(log.map(\.seq) == Array(1...Int64(log.count)), "gap-free from 1")
        // The state is in PostgreSQL, not in a file beside the config.
        let stored = try await cluster.sql("SELECT COUNT(*) FROM events", database: database)
        #expect(stored == "\(log.count)\n")
        #expect(!FileManager.default.fileExists(atPath: server.directory + "/state.db"))
        let overview = try await runSluice(["status", "-o", "json"] + viewer)

        try await server.restart(signal: SIGKILL)
        #expect(try await runSluice(["status", "web/search", "-o", "json"] + viewer).stdout == status.stdout)
        #expect(try await runSluice(["events", "web/search", "-o", "json"] + viewer).stdout == events.stdout)
        #expect(try await runSluice(["status", "-o", "json"] + viewer).stdout == overview.stdout)
        // And it goes on from there: the next rollout's first event follows the last one.
        // The killed replica's leases expire within 3 s; until then the start is refused (503) and nothing is written.
        var next = try await runSluice(["rollout", "start", "web/search", "--version", "v3"] + server.tokenArgs(.ci))
        try await waitUntil("the restarted replica to take the shards", timeout: .seconds(30)) {
            if next.status == 0 { return true }
            next = try await runSluice(["rollout", "start", "web/search", "--version", "v3"] + server.tokenArgs(.ci))
            return next.status == 0
        }
        #expect(next.status == 0, "\(next.stderr)")
        let after = try await runSluice(["events", "web/search", "-o", "json"] + viewer)
        let resumed = after.stdout.split(separator: "\n").compactMap {
            try? JSONDecoder().decode(EventView.self, from: Data($0.utf8))
        }
        #expect(resumed.count > log.count && resumed[log.count].seq == Int64(log.count) + 1, "\(after.stdout)")
        #expect(resumed[log.count].type == "RolloutStarted")
    }

    /// `/readyz` reports the database (docs/api.md): 200 while PostgreSQL answers; 503 naming the store within a
    /// probe's period and bound of it stopping, answered at once all the while (the probe's answer is kept, the
    /// store is not asked per request), with `sluice_ready` 0; 200 and `sluice_ready` 1 again once it is back.
    @Test
    func readyzReportsTheDatabaseStoppedAndStartedAgain() async throws {
        let cluster = try await PostgresCluster.start()
        defer { cluster.stop() }
        let database = try await cluster.createDatabase()
        let server = try await ServeProcess.start(
            store: "database: \(cluster.url(database: database))\ndatabasePasswordFile: \(cluster.passwordFile)\n")
        defer { server.stop() }
        let url = try #require(URL(string: server.url))
        #expect(try await send("GET", url, "/readyz").status == 200)
        #expect(try await AlertMetricsTests.lines(url).contains("sluice_ready 1.0"))

        cluster.stopServer()
        let stopped = ContinuousClock.now
        try await waitUntil("/readyz to answer 503", timeout: .seconds(30)) {
            try await send("GET", url, "/readyz").status == 503
        }
        print("/readyz answered 503 \(ContinuousClock.now - stopped) after PostgreSQL stopped")
        let asked = ContinuousClock.now
        let down = try await send("GET", url, "/readyz")
        #expect(ContinuousClock.now - asked < .seconds(1), "/readyz must not wait for the database")
        #expect(down.errorCode == "unavailable")
        #expect(down.text.contains("not ready: the store did not answer within 2.0 seconds (since "), "\(down.text)")
        let metricsAsked = ContinuousClock.now
        #expect(try await AlertMetricsTests.lines(url).contains("sluice_ready 0.0"))
        #expect(ContinuousClock.now - metricsAsked < .seconds(1), "/metrics must not wait for the database")

        try await cluster.startServer()
        let started = ContinuousClock.now
        try await waitUntil("/readyz to answer 200 again", timeout: .seconds(60)) {
            try await send("GET", url, "/readyz").status == 200
        }
        print("/readyz answered 200 \(ContinuousClock.now - started) after PostgreSQL was back")
        #expect(try await AlertMetricsTests.lines(url).contains("sluice_ready 1.0"))
        #expect(try await runSluice(["status"] + server.tokenArgs(.viewer)).status == 0)
    }

    /// PostgreSQL stops mid-rollout for longer than the rollout's holds (it would have gone to 100 % and been promoted
    /// meanwhile), then starts again under the same `sluice serve`: while it is down nothing moves (Caddy's route is
    /// the same, byte for byte, every time it is read; `/readyz` is 503); once it is back the process carries on by
    /// itself and the rollout ends Succeeded with every event once, `seq` 1...N.
    @Test
    func aRolloutOutlivesPostgreSQLDownForLongerThanItsHolds() async throws {
        let cluster = try await PostgresCluster.start()
        defer { cluster.stop() }
        let database = try await cluster.createDatabase()
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        let server = try await ServeProcess.start(
            store: "database: \(cluster.url(database: database))\ndatabasePasswordFile: \(cluster.passwordFile)\n")
        defer { server.stop() }
        let url = try #require(URL(string: server.url))
        let viewer = server.tokenArgs(.viewer)
        try await server.applyBehind(caddy, hold: "2s")
        func log() async throws -> [EventView] {
            try await runSluice(["events", "web/search", "-o", "json"] + viewer).stdout.split(separator: "\n").compactMap {
                try? JSONDecoder().decode(EventView.self, from: Data($0.utf8))
            }
        }
        func route() async throws -> String {
            try await send("GET", try #require(URL(string: caddy.adminURL)), "/id/search").text
        }
        let started = try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + server.tokenArgs(.ci))
        #expect(started.status == 0, "\(started.stderr)")
        try await waitUntil("the canary stage's weight to be confirmed", timeout: .seconds(60)) {
            try await log().contains { $0.type == "TrafficShifted" }
        }

        cluster.stopServer()
        let stopped = try await route()
        #expect(stopped.contains("\(caddy.backendDials[1])"), "\(stopped)")
        // Three holds' worth of time: the rollout would have moved to 100 % and been promoted.
        let until = ContinuousClock.now + .seconds(6)
        var reads = 0
        while ContinuousClock.now < until {
            #expect(try await route() == stopped, "Caddy's route changed while PostgreSQL was down")
            reads += 1
            try await Task.sleep(for: .milliseconds(250))  // the period of the reads over the outage
        }
        #expect(reads > 10)
        #expect(try await send("GET", url, "/readyz").status == 503)

        try await cluster.startServer()
        let back = ContinuousClock.now
        try await waitUntil("the rollout to succeed after PostgreSQL is back", timeout: .seconds(120)) {
            try await log().last?.type == "Promoted"
        }
        print("the rollout was promoted \(ContinuousClock.now - back) after PostgreSQL was back")
        let events = try await log()
        #expect(events.map(\.seq) == Array(1...Int64(events.count)), "gap-free, no duplicate: \(events.map(\.seq))")
        #expect(events.filter { $0.type == "Promoted" }.count == 1 && events.first?.type == "RolloutStarted")
        let status = try await runSluice(["status", "web/search", "-o", "json"] + viewer)
        let rollout = try JSONDecoder().decode(RolloutList.self, from: Data(status.stdout.utf8)).rollouts.first
        #expect(rollout?.phase == "Succeeded", "\(status.stdout)")
        #expect(server.process.isRunning, "the same process carried on")
        #expect(try await send("GET", url, "/readyz").status == 200)
    }
}
