import Foundation
import SluiceAPI
import SluiceTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Several `sluice serve` replicas on one PostgreSQL (docs/ha.md "Leases and fencing"), the real binary as
/// subprocesses, real Caddy behind a proxy that counts the writes to its admin API.
struct HAZombieTests {
    /// Short leases, so that the test takes seconds: a lease of 3 s renewed every second.
    static let leases = "leaseDuration: 3s\nleaseRenewInterval: 1s\n"
    /// For the zombie: 6 s renewed every 2 s, so that the new owner's lease (4 s or more left when it is stopped)
    /// outlasts the 1.5 s window even on a loaded machine.
    static let zombieLeases = "leaseDuration: 6s\nleaseRenewInterval: 2s\n"

    /// argo-rollouts #2117: an owner stopped (SIGSTOP) past its lease, another replica takes the rollout over and
    /// moves its traffic; the old owner, let go on (SIGCONT) while the new one is stopped, makes no store write and no
    /// router write: its own deadline passed, and the database refuses its epoch.
    @Test
    func aReplicaStoppedPastItsLeaseWritesNothingWhenItComesBack() async throws {
        let cluster = try await PostgresCluster.shared()
        let database = try await cluster.createDatabase()
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        defer { caddy.stop() }
        let proxy = try await AdminProxy(upstream: caddy.adminURL)
        defer { proxy.stop() }
        let store = "database: \(cluster.url(database: database))\ndatabasePasswordFile: \(cluster.passwordFile)\n"
        func sql(_ statement: String) async throws -> String {
            try await cluster.sql(statement, database: database).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        // The first replica takes every shard; the second, once started, gets half, and the first keeps web/search's
        // (shard 18: a replica gives back its highest shards).
        let first = try await ServeProcess.start(config: Self.zombieLeases, store: store)
        defer { first.stop() }
        try await waitUntil("the first replica to hold every shard", timeout: .seconds(30)) {
            try await sql("SELECT COUNT(*) FROM shard_leases WHERE holder IS NOT NULL") == "64"
        }
        let owner = try await sql("SELECT holder FROM shard_leases WHERE shard = 18")
        let second = try await ServeProcess.start(config: Self.zombieLeases, store: store)
        defer { second.stop() }
        try await waitUntil("the replicas to share the shards", timeout: .seconds(30)) {
            try await sql("SELECT COUNT(DISTINCT holder) FROM shard_leases") == "2"
        }
        #expect(try await sql("SELECT holder FROM shard_leases WHERE shard = 18") == owner)
        // Each replica's /metrics reports its own shards, and none unowned (once each has read the table again).
        for server in [first, second] {
            try await waitUntil("\(server.url)/metrics to report 32 shards owned", timeout: .seconds(15)) {
                let metrics = try await run("/usr/bin/curl", ["-sf", server.url + "/metrics"]).stdout
                return metrics.contains("\nsluice_shards_owned 32.0\n") && metrics.contains("\nsluice_shards_unowned 0.0\n")
            }
        }

        let path = first.directory + "/search.yaml"
        try ServeProcess.strategy(
            weight: 10, adminURL: proxy.url, stable: caddy.backendDials[0], canary: caddy.backendDials[1], hold: "10s",
            metricsURL: "http://\(caddy.backendDials[2])/budget"
        ).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try await runSluice(["apply", "-f", path] + first.tokenArgs(.release)).status == 0)
        let started = try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + first.tokenArgs(.ci))
        #expect(started.status == 0, "\(started.stderr)")
        do {
            try await waitUntil("the owner to set 10% at Caddy", timeout: .seconds(30)) {
                try await Self.caddyWeights(caddy) == "[9, 1]"
            }
        } catch {
            let status = try await runSluice(["status", "web/search", "-o", "json"] + first.tokenArgs(.viewer)).stdout
            throw SupportError("\(error)\nstatus: \(status)\nfirst:\n\(first.process.logTail())\nsecond:\n\(second.process.logTail())")
        }

        // The owner stops past its lease; the other replica takes the shard and moves the traffic to 100 %.
        kill(first.process.pid, SIGSTOP)
        var resumed = false
        defer { if !resumed { kill(first.process.pid, SIGCONT) } }
        try await waitUntil("the second replica to take web/search's shard", timeout: .seconds(30)) {
            let holder = try await sql("SELECT holder FROM shard_leases WHERE shard = 18")
            return !holder.isEmpty && holder != owner
        }
        try await waitUntil("the new owner to shift the traffic to 100%", timeout: .seconds(30)) {
            try await Self.caddyWeights(caddy) == "[0, 1]"
        }

        // The new owner stops (so every write from now on is the old one's), and the old one goes on, well within
        // the new owner's lease (renewed at most 2 s ago, for 6 s).
        kill(second.process.pid, SIGSTOP)
        var secondResumed = false
        defer { if !secondResumed { kill(second.process.pid, SIGCONT) } }
        let writes = try proxy.writes()
        let state = try await sql("SELECT generation || ' ' || (SELECT last FROM event_seq) FROM rollouts")
        kill(first.process.pid, SIGCONT)
        resumed = true
        // Awake, the old owner's drivers find their deadline long passed (it ticks at once when it may: the rollout's
        // interval is 1 s and its next tick is overdue); give it well over that.
        try await Task.sleep(for: .milliseconds(1500))  // the window in which a zombie would act
        #expect(try proxy.writes() == writes, "router writes by the stopped-and-resumed replica")
        #expect(try await sql("SELECT generation || ' ' || (SELECT last FROM event_seq) FROM rollouts") == state,
                "store writes by the stopped-and-resumed replica")
        #expect(try await sql("SELECT holder FROM shard_leases WHERE shard = 18") != owner)
        kill(second.process.pid, SIGCONT)
        secondResumed = true

        // And the rollout ends as its checks say, its weight at Caddy the one it logged last.
        try await waitUntil("the rollout to succeed", timeout: .seconds(60)) {
            let status = try await runSluice(["status", "web/search", "-o", "json"] + second.tokenArgs(.viewer))
            return status.stdout.contains("\"Succeeded\"")
        }
        let events = try await runSluice(["events", "web/search", "-o", "json"] + second.tokenArgs(.viewer))
        let log = events.stdout.split(separator: "\n").compactMap {
            try? JSONDecoder().decode(EventView.self, from: Data($0.utf8))
        }
        #expect(log.map(\.seq) == Array(1...Int64(log.count)), "no event lost or duplicated: \(events.stdout)")
        #expect(log.last?.type == "Promoted")
        #expect(first.process.isRunning, "the old owner lives on, as a replica without the shard")
    }

    /// A replica that cannot reach PostgreSQL stops acting at its own deadline and says so on `/readyz` (503 with the
    /// reason); when the database is back it renews and is ready again.
    @Test
    func aReplicaWithoutItsDatabaseIsNotReadyAndSaysWhy() async throws {
        let cluster = try await PostgresCluster.start()  // its own: this test stops the server
        defer { cluster.stop() }
        let database = try await cluster.createDatabase()
        let server = try await ServeProcess.start(
            config: Self.leases,
            store: "database: \(cluster.url(database: database))\ndatabasePasswordFile: \(cluster.passwordFile)\n")
        defer { server.stop() }
        func readyz() async throws -> (status: String, body: String) {
            let answer = try await run("/usr/bin/curl", ["-s", "-w", "\n%{http_code}", server.url + "/readyz"]).stdout
            let lines = answer.split(separator: "\n", omittingEmptySubsequences: false)
            return (String(lines.last ?? ""), lines.dropLast().joined(separator: "\n"))
        }
        try await waitUntil("the replica to be ready", timeout: .seconds(30)) { try await readyz().status == "200" }
        cluster.stopServer()
        let stoppedAt = ContinuousClock.now
        try await waitUntil("/readyz to say the leases are not renewed", timeout: .seconds(30)) {
            let answer = try await readyz()
            return answer.status == "503" && answer.body.contains("shard leases")
        }
        // Its deadline: 3 s lease less the 0.6 s margin after the last renewal it sent, at most 1 s before the stop.
        let after = ContinuousClock.now - stoppedAt
        #expect(after < .seconds(5), "not ready only after \(after)")
        try await cluster.startServer()
        try await waitUntil("the replica to be ready again", timeout: .seconds(60)) { try await readyz().status == "200" }
    }

    /// Caddy's own weights for web/search's handler, e.g. `[9, 1]` (reduced).
    static func caddyWeights(_ caddy: CaddyServer) async throws -> String {
        try await HAFailoverTests.caddyWeights(caddy, handler: "search")
    }
}
