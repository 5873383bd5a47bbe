import Foundation
import SluiceAPI
import SluiceHTTP
import SluiceTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Any replica serves the API (docs/ha.md "Commands on any replica"): two `sluice serve` replicas (the real binary) on
/// one real PostgreSQL, web/search behind real Caddy. A command sent to the replica that does not drive the rollout
/// is queued for the one that does, carried out there, and answered as the owner would answer it.
struct HAForwardTests {
    /// Forwarded rollbacks timed by `forwardedRollbacksReachWeightZeroAtCaddy` (Benchmarks/scripts/forward-latency sets
    /// 50).
    static let runs = Int(ProcessInfo.processInfo.environment["SLUICE_HA_FORWARD_RUNS"] ?? "") ?? 5

    /// Two replicas sharing the shards; web/search (shard 18) is driven by `owner` and served by both.
    struct World {
        let cluster: PostgresCluster
        let database: String
        let caddy: CaddyServer
        let owner: ServeProcess
        let other: ServeProcess

        func sql(_ statement: String) async throws -> String {
            try await cluster.sql(statement, database: database).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func weights() async throws -> String { try await HAZombieTests.caddyWeights(caddy) }

        func stop() {
            other.stop()
            owner.stop()
            caddy.stop()
        }

        /// The events of web/search, as `sluice events -o json` gives them from `server`.
        func events(from server: ServeProcess) async throws -> [EventView] {
            let listed = try await runSluice(["events", "web/search", "-o", "json"] + server.tokenArgs(.viewer))
            return listed.stdout.split(separator: "\n").compactMap {
                try? JSONDecoder().decode(EventView.self, from: Data($0.utf8))
            }
        }

        /// The phase of web/search's newest rollout, as `sluice status -o json` on `server` says.
        func phase(from server: ServeProcess) async throws -> String {
            let status = try await runSluice(["status", "web/search", "-o", "json"] + server.tokenArgs(.viewer)).stdout
            let list = try? JSONDecoder().decode(RolloutList.self, from: Data(status.utf8))
            return list?.rollouts.first?.phase ?? status
        }

        /// Both logs, for a failure message.
        var logs: String { "owner:\n\(owner.process.logTail())\nother:\n\(other.process.logTail())" }
    }

    /// Two replicas on `leases`; web/search applied with each stage holding `hold` (and notifying `webhook`).
    static func world(leases: String = HAZombieTests.leases, hold: String = "1m", webhook: String? = nil) async throws
        -> World
    {
        let cluster = try await PostgresCluster.shared()
        let database = try await cluster.createDatabase()
        let caddy = try await ServeProcess.caddyWithPassingCheck()
        let store = "database: \(cluster.url(database: database))\ndatabasePasswordFile: \(cluster.passwordFile)\n"
        func sql(_ statement: String) async throws -> String {
            try await cluster.sql(statement, database: database).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let owner = try await ServeProcess.start(config: leases, store: store)
        try await waitUntil("the first replica to hold every shard", timeout: .seconds(30)) {
            try await sql("SELECT COUNT(*) FROM shard_leases WHERE holder IS NOT NULL") == "64"
        }
        let holder = try await sql("SELECT holder FROM shard_leases WHERE shard = 18")
        let other = try await ServeProcess.start(config: leases, store: store)
        let world = World(cluster: cluster, database: database, caddy: caddy, owner: owner, other: other)
        do {
            // A replica gives back its highest shards: the first keeps web/search's (18).
            try await waitUntil("the replicas to share the shards", timeout: .seconds(30)) {
                let holders = try await sql("SELECT COUNT(DISTINCT holder) FROM shard_leases")
                let held = try await sql("SELECT COUNT(*) FROM shard_leases WHERE holder IS NOT NULL AND expires_at > now()")
                return holders == "2" && held == "64"
            }
            #expect(try await sql("SELECT holder FROM shard_leases WHERE shard = 18") == holder)
            let path = owner.directory + "/search.yaml"
            try ServeProcess.strategy(
                weight: 10, adminURL: caddy.adminURL, stable: caddy.backendDials[0], canary: caddy.backendDials[1],
                hold: hold, metricsURL: "http://\(caddy.backendDials[2])/budget", webhook: webhook
            ).write(toFile: path, atomically: true, encoding: .utf8)
            let applied = try await runSluice(["apply", "-f", path] + owner.tokenArgs(.release))
            guard applied.status == 0 else { throw SupportError("apply: \(applied.stderr)") }
            return world
        } catch {
            world.stop()
            throw error
        }
    }

    /// Start, pause, a refused pause, resume and rollback, each sent to the replica that does not drive the rollout:
    /// the owner carries them out (Caddy reads back 10 % and then 0 %), the answers and exit codes are the owner's,
    /// and the log holds each once, with the actor and reason given.
    @Test
    func commandsSentToTheReplicaThatDoesNotDriveTheRolloutAreCarriedOutByTheOwner() async throws {
        let world = try await Self.world()
        defer { world.stop() }
        let other = world.other
        let started = try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + other.tokenArgs(.ci))
        #expect(started.status == 0, "\(started.stderr)\n\(world.logs)")
        try await waitUntil("the owner to set 10% at Caddy", timeout: .seconds(30)) {
            try await world.weights() == "[9, 1]"
        }

        let paused = try await runSluice(["pause", "web/search"] + other.tokenArgs(.oncall))
        #expect(paused.status == 0, "\(paused.stderr)")
        #expect(try await world.phase(from: world.owner) == "Paused")
        // A refusal is the owner's, word for word, with the same exit code.
        let again = try await runSluice(["pause", "web/search"] + other.tokenArgs(.oncall))
        let onOwner = try await runSluice(["pause", "web/search"] + world.owner.tokenArgs(.oncall))
        #expect(again.status != 0 && again.status == onOwner.status, "\(again.stderr) / \(onOwner.stderr)")
        #expect(again.stderr == onOwner.stderr)
        let resumed = try await runSluice(["resume", "web/search"] + other.tokenArgs(.oncall))
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try await world.phase(from: other) == "Progressing")

        let rollback = try await runSluice(
            ["rollback", "web/search", "--reason", "checkout errors (forwarded)"] + other.tokenArgs(.oncall))
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)\n\(world.logs)")
        #expect(rollback.stdout.contains("traffic: 100% stable, 0% canary, confirmed by the router"), "\(rollback.stdout)")
        #expect(try await world.weights() == "[1, 0]", "Caddy reads back 0% for the canary")

        let log = try await world.events(from: other)
        #expect(log.map(\.seq) == Array(1...Int64(log.count)), "no event lost or duplicated")
        let rollbacks = log.filter { $0.type == "RollbackStarted" }
        #expect(rollbacks.count == 1, "\(log.map(\.type))")
        #expect(rollbacks.first?.actor == "oncall-bot", "\(rollbacks)")
        #expect(rollbacks.first?.message.contains("checkout errors (forwarded)") == true, "\(rollbacks)")
        #expect(log.filter { $0.type == "Paused" }.count == 1 && log.filter { $0.type == "Resumed" }.count == 1)
        #expect(log.first?.type == "RolloutStarted" && log.first?.actor == "ci-bot")
        // Each was carried out by the owner: the one replica that wrote for the shard.
        #expect(try await world.sql("SELECT COUNT(DISTINCT finished_by) FROM commands WHERE status <> 'cancelled'") == "1")
        #expect(try await world.sql("SELECT COUNT(*) FROM commands WHERE status = 'pending'") == "0")
    }

    /// The owner is SIGKILLed and a rollback is sent to the other replica at once: the command waits in the queue
    /// until the other takes the shard (one lease later), which then carries it out, once.
    @Test
    func aCommandWhoseOwnerDiedIsCarriedOutByTheNextOwner() async throws {
        let world = try await Self.world()
        defer { world.stop() }
        let started = try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + world.owner.tokenArgs(.ci))
        #expect(started.status == 0, "\(started.stderr)")
        try await waitUntil("the owner to set 10% at Caddy", timeout: .seconds(30)) {
            try await world.weights() == "[9, 1]"
        }
        world.owner.process.stop(signal: SIGKILL)
        let rollback = try await runSluice(
            ["rollback", "web/search", "--reason", "owner gone"] + world.other.tokenArgs(.oncall))
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)\n\(world.logs)")
        #expect(try await world.weights() == "[1, 0]")
        let rollbacks = try await world.events(from: world.other).filter { $0.type == "RollbackStarted" }
        #expect(rollbacks.count == 1 && rollbacks.first?.message.contains("owner gone") == true, "\(rollbacks)")
        #expect(try await world.sql("SELECT status FROM commands") == "applied")
    }

    /// `sluice events --follow` on the replica that does not drive the rollout sees every event the owner appends, and
    /// goes on across a restart (SIGKILL) of the replica it reads from: `seq` 1...N, no gap, no duplicate.
    @Test
    func aFollowerOfTheOtherReplicaSeesEveryEventAcrossItsRestart() async throws {
        let world = try await Self.world(hold: "3s")
        defer { world.stop() }
        let directory = try makeTemporaryDirectory("sluice-follow")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let follower = try ManagedProcess(
            name: "follower", executable: try sluiceBinary(),
            arguments: ["events", "web/search", "--follow", "-o", "json"] + world.other.tokenArgs(.viewer),
            directory: directory, installHint: "swift build")
        defer { follower.stop() }
        func followed() -> [EventView] {
            let text = (try? String(contentsOfFile: follower.logPath, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(EventView.self, from: Data($0.utf8)) }
        }
        let started = try await runSluice(["rollout", "start", "web/search", "--version", "v2"] + world.owner.tokenArgs(.ci))
        #expect(started.status == 0, "\(started.stderr)")
        try await waitUntil("the follower to see the first traffic shift", timeout: .seconds(30)) {
            followed().contains { $0.type == "TrafficShifted" }
        }
        try await world.other.restart(signal: SIGKILL)
        try await waitUntil("the rollout to succeed", timeout: .seconds(60)) {
            try await world.phase(from: world.owner) == "Succeeded"
        }
        let log = try await world.events(from: world.owner)
        try await waitUntil("the follower to see the last event", timeout: .seconds(30)) {
            followed().last?.seq == log.last?.seq
        }
        let seen = followed()
        #expect(seen.map(\.seq) == Array(1...Int64(log.count)), "\(seen.map(\.seq))\n\(follower.logTail())")
        #expect(seen.map(\.type) == log.map(\.type))
    }

    /// Rollbacks timed to Caddy reading back 0 % for the canary (polled every 2 ms in process), `runs` of each kind,
    /// each on a new rollout at 10 %: `sluice rollback --no-wait` sent to the replica that does not drive the rollout
    /// (from the CLI's start: its own start-up included), the API's POST sent to it (from the request), and the same
    /// POST sent to the owner (no queue, for comparison). Prints p50 and p99 of each (docs/ha.md, BENCHMARKS.md);
    /// asserts only what each rollback did.
    @Test
    func forwardedRollbacksReachWeightZeroAtCaddy() async throws {
        let world = try await Self.world()
        defer { world.stop() }
        let http = try CurlClient()
        var version = 1
        var lines: [String] = []
        for (what, server, viaCLI) in [
            ("CLI on the other replica", world.other, true), ("API on the other replica", world.other, false),
            ("API on the owner", world.owner, false),
        ] {
            var latencies: [Double] = []
            for _ in 1...Self.runs {
                version += 1
                latencies.append(
                    try await Self.timeRollback(world, version: "v\(version)", to: server, viaCLI: viaCLI, http: http))
            }
            let sorted = latencies.sorted()
            func percentile(_ p: Double) -> Int {
                Int(sorted[min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1)])
            }
            lines.append(
                "HA rollback -> weight 0 at Caddy, \(what): runs \(sorted.count), p50 \(percentile(0.5)) ms, "
                    + "p99 \(percentile(0.99)) ms, min \(Int(sorted.first ?? 0)) ms, max \(Int(sorted.last ?? 0)) ms")
        }
        let rollbacks = try await world.events(from: world.other).filter { $0.type == "RollbackStarted" }
        #expect(rollbacks.count == 3 * Self.runs)
        for line in lines { print(line) }
    }

    /// Starts a rollout of `version` (through the other replica), waits for 10 % at Caddy, sends the rollback to
    /// `server` and returns the milliseconds until Caddy reads back 0 %; then waits until the rollout is RolledBack.
    static func timeRollback(_ world: World, version: String, to server: ServeProcess, viaCLI: Bool, http: CurlClient)
        async throws -> Double
    {
        let started = try await runSluice(
            ["rollout", "start", "web/search", "--version", version] + world.other.tokenArgs(.ci))
        #expect(started.status == 0, "\(started.stderr)\n\(world.logs)")
        // "rollout ID of web/search to VERSION started"
        let id = String(started.stdout.split(separator: " ").dropFirst().first ?? "")
        try await waitUntil("rollout \(version) at 10% at Caddy", timeout: .seconds(30)) {
            try await world.weights() == "[9, 1]"
        }
        let weightsURL = world.caddy.adminURL + "/id/search/load_balancing/selection_policy/weights"
        let token = try String(contentsOfFile: server.directory + "/oncall.token", encoding: .utf8)
        let begun = ContinuousClock.now
        async let sent: Int = {
            if viaCLI {
                let result = try await runSluice(
                    ["rollback", "web/search", "--reason", "bench \(version)", "--no-wait"] + server.tokenArgs(.oncall))
                #expect(result.status == 0, "\(result.stderr)")
                return Int(result.status)
            }
            let answer = try await http.execute(
                HTTPRequest(
                    method: "POST", url: server.url + "/v1/rollouts/\(id)/rollback",
                    headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
                    body: Data(#"{"reason": "bench \#(version)"}"#.utf8), retry: .none))
            #expect(answer.status == 200, "\(String(decoding: answer.body, as: UTF8.self))")
            return answer.status
        }()
        var reached: ContinuousClock.Instant?
        while reached == nil, ContinuousClock.now - begun < .seconds(15) {
            // Caddy's admin API may reset a read while it loads a new config: read again.
            let answer = try? await http.execute(HTTPRequest(url: weightsURL, retry: .none))
            if let answer, String(decoding: answer.body, as: UTF8.self).filter({ !$0.isWhitespace }) == "[1,0]" {
                reached = ContinuousClock.now
            } else {
                try await Task.sleep(for: .milliseconds(2))  // the poll's period
            }
        }
        _ = try await sent
        let at = try #require(reached, "rollout \(version): Caddy never read back 0%\n\(world.logs)")
        try await waitUntil("rollout \(version) to be rolled back", timeout: .seconds(30)) {
            try await world.phase(from: world.other) == "RolledBack"
        }
        let (seconds, attoseconds) = (at - begun).components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
