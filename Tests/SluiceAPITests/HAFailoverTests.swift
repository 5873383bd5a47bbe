import Foundation
import SluiceAPI
import SluiceCore
import SluiceStore
import SluiceTestSupport
import Testing

/// Failover (docs/ha.md "Failover time"): 3 `sluice serve` replicas on one PostgreSQL drive 30 rollouts through real
/// Caddy handlers while a replica owning shards is SIGKILLed again and again (and started again). Every rollout ends
/// in the phase its check calls for, the event log has no gap and no duplicate, each Caddy weight is the rollout's
/// last, and every rollout of a killed replica is ticked again by another within the bound. Prints the failover times.
struct HAFailoverTests {
    static let replicas = 3
    static let rollouts = 30
    static let environment = ProcessInfo.processInfo.environment
    static let kills = Int(environment["SLUICE_HA_KILLS"] ?? "") ?? 20
    /// Lease 3 s renewed every second (a third of it, as the defaults 15 s and 5 s), a tick every second (the
    /// strategies' interval). SLUICE_HA_LEASE=15 measures with the production defaults (then give the stages longer
    /// holds, SLUICE_HA_HOLD, so that the rollouts outlast the kills).
    static let leaseSeconds = Int(environment["SLUICE_HA_LEASE"] ?? "") ?? 3
    static let lease: Duration = .seconds(leaseSeconds)
    static let renew: Duration = lease / 3
    static let interval: Duration = .seconds(1)
    static let hold = Int(environment["SLUICE_HA_HOLD"] ?? "") ?? 50
    /// Text logs: `replicaID` reads the id the server logged at start.
    static let config = "leaseDuration: \(leaseSeconds)s\nleaseRenewInterval: \(leaseSeconds * 1000 / 3)ms\nlogFormat: text\n"

    /// Rollout `index` breaches its check (and rolls back) when this is true; the others succeed.
    static func breaches(_ index: Int) -> Bool { index % 5 == 4 }
    static func name(_ index: Int) -> String { String(format: "s%02d", index) }

    @Test
    func rolloutsSurviveRepeatedKillsOfTheirOwners() async throws {
        let seed = UInt64(ProcessInfo.processInfo.environment["SLUICE_HA_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64(UInt32.max))
        print("HA failover seed: \(seed) (set SLUICE_HA_SEED=\(seed) to repeat it)")
        var random = SplitMix64(seed: seed)
        let cluster = try await PostgresCluster.shared()
        let database = try await cluster.createDatabase()
        func sql(_ statement: String) async throws -> String {
            try await cluster.sql(statement, database: database).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        // One Caddy: a handler per rollout (@id hNN) over the same stable and canary backends, and the check's two
        // answers (pass, breach).
        let caddy = try await CaddyServer.start(backendBodies: ["stable", "canary", #"{"value": 0.9}"#, #"{"value": 0.1}"#]) {
            dials in
            [
                "handler": "subroute",
                "routes": (0..<Self.rollouts).map { index in
                    [
                        "match": [["path": ["/\(Self.name(index))/*"]]],
                        "handle": [CaddyServer.weightedProxy(id: "h\(Self.name(index))", dials: Array(dials.prefix(2)), weights: [100, 0])],
                    ] as [String: Any]
                },
            ]
        }
        defer { caddy.stop() }

        let store = "database: \(cluster.url(database: database))\ndatabasePasswordFile: \(cluster.passwordFile)\n"
        var servers: [ServeProcess] = []
        defer { for server in servers { server.stop() } }
        for _ in 0..<Self.replicas {
            servers.append(try await ServeProcess.start(config: Self.config, store: store))
        }
        try await waitUntil("the replicas to share the shards", timeout: .seconds(30)) {
            let holders = try await sql("SELECT COUNT(DISTINCT holder) FROM shard_leases")
            let free = try await sql("SELECT COUNT(*) FROM shard_leases WHERE holder IS NULL")
            return holders == "\(Self.replicas)" && free == "0"
        }

        for index in 0..<Self.rollouts {
            let path = servers[0].directory + "/\(Self.name(index)).yaml"
            try Self.strategy(index, caddy: caddy).write(toFile: path, atomically: true, encoding: .utf8)
            let applied = try await runSluice(["apply", "-f", path] + servers[0].tokenArgs(.release))
            #expect(applied.status == 0, "\(applied.stderr)")
        }
        // A start is carried out by the replica that owns the rollout's shard (the others refuse it).
        for index in 0..<Self.rollouts {
            try await waitUntil("the owner to start ha/\(Self.name(index))", timeout: .seconds(30)) {
                for server in servers {
                    let started = try await runSluice(
                        ["rollout", "start", "ha/\(Self.name(index))", "--version", "v2"] + server.tokenArgs(.ci))
                    if started.status == 0 { return true }
                }
                return false
            }
        }

        // Kill an owner of active rollouts, measure until each of its rollouts is ticked by another replica, start it
        // again; `kills` times.
        var gaps: [Double] = []
        var worstPerKill: [Double] = []
        var kills = 0
        while kills < Self.kills {
            let holders = try await Self.holders(sql)
            let active = try await sql("SELECT namespace || '/' || name FROM rollouts WHERE active")
                .split(separator: "\n").map(String.init)
            guard !active.isEmpty else { break }
            let owned = Dictionary(grouping: active) { key -> String in
                let parts = key.split(separator: "/")
                return holders[Shards.of(StrategyKey(namespace: String(parts[0]), name: String(parts[1])))] ?? ""
            }
            let candidates = servers.indices.filter { owned[Self.replicaID(servers[$0])]?.isEmpty == false }
            guard !candidates.isEmpty else {
                try await Task.sleep(for: .milliseconds(200))  // shards moving between replicas: look again
                continue
            }
            let victim = candidates[Int(random.next() % UInt64(candidates.count))]
            let orphans = owned[Self.replicaID(servers[victim])] ?? []
            let killedAt = Timestamp(Date())
            servers[victim].process.stop(signal: SIGKILL)
            kills += 1
            var ticked: [String: Double] = [:]
            try await waitUntil("another replica to tick \(orphans)", timeout: .seconds(30)) {
                for key in orphans where ticked[key] == nil {
                    let parts = key.split(separator: "/")
                    let observed = try await sql(
                        "SELECT COALESCE(MAX(observed_at), 0) FROM rollouts WHERE namespace = '\(parts[0])' AND name = '\(parts[1])'")
                    if let at = Int64(observed), at > killedAt.millisecondsSinceEpoch {
                        ticked[key] = Double(at - killedAt.millisecondsSinceEpoch) / 1000
                    }
                }
                return ticked.count == orphans.count
            }
            gaps += ticked.values
            worstPerKill.append(ticked.values.max() ?? 0)
            try await servers[victim].startAgain()
            try await Task.sleep(for: .milliseconds(Int(random.next() % 1500)))  // a random moment for the next kill
        }
        #expect(kills >= Self.kills, "the rollouts finished after \(kills) kills: make their holds longer")

        // The holds left after the kills, and a lease per time a rollout was orphaned: longer holds, a longer wait.
        try await waitUntil("every rollout to finish", timeout: .seconds(max(300, 3 * Self.hold))) {
            try await sql("SELECT COUNT(*) FROM rollouts WHERE active") == "0"
        }
        // Every rollout in the phase its check calls for, its weight at Caddy the last it recorded.
        for index in 0..<Self.rollouts {
            let row = try await sql(
                "SELECT phase || ' ' || (content::json->>'desiredWeight') FROM rollouts WHERE name = '\(Self.name(index))'")
            // Both end with the canary weight at 0: a promotion swaps the pools, so the new version is the stable.
            let expected = Self.breaches(index) ? "RolledBack 0" : "Succeeded 0"
            #expect(row == expected, "ha/\(Self.name(index))")
            let serving = try await Self.servingDials(caddy, handler: "h\(Self.name(index))")
            let version = Self.breaches(index) ? caddy.backendDials[0] : caddy.backendDials[1]
            #expect(serving == [version], "Caddy sends ha/\(Self.name(index))'s traffic to \(serving)")
        }
        // The log: seq 1...N, and per rollout one start, one end (last), and no event twice in a row.
        let seqs = try await sql("SELECT seq FROM events ORDER BY seq").split(separator: "\n").compactMap { Int64($0) }
        #expect(seqs == Array(1...Int64(seqs.count)), "gap-free")
        for index in 0..<Self.rollouts {
            let log = try await sql(
                "SELECT type || ' ' || (content::json->>'message') FROM events WHERE name = '\(Self.name(index))' ORDER BY seq"
            ).split(separator: "\n").map(String.init)
            #expect(log.first?.hasPrefix("RolloutStarted") == true && log.filter { $0.hasPrefix("RolloutStarted") }.count == 1)
            let end = Self.breaches(index) ? "RolledBack" : "Promoted"
            #expect(log.last?.hasPrefix(end) == true && log.filter { $0.hasPrefix(end) }.count == 1, "\(log)")
            #expect(zip(log, log.dropFirst()).allSatisfy { $0 != $1 }, "an event recorded twice: \(log)")
        }

        // Failover: kill -> first tick of each orphaned rollout by another replica.
        let sorted = gaps.sorted()
        func percentile(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
        print(
            "HA failover: \(kills) kills, \(sorted.count) orphaned rollouts; first tick by another replica after p50 "
                + "\(percentile(0.5)) s, p99 \(percentile(0.99)) s, max \(sorted.last ?? 0) s (per kill, worst: "
                + "\(worstPerKill.sorted()))")
        let bound = Double((Self.lease + Self.renew + Self.interval).components.seconds)
            + Double((Self.lease + Self.renew + Self.interval).components.attoseconds) / 1e18
        #expect(sorted.allSatisfy { $0 <= bound }, "a rollout waited longer than lease + renewal + interval: \(sorted)")
    }

    /// Shard -> replica id holding it.
    static func holders(_ sql: (String) async throws -> String) async throws -> [Int: String] {
        var holders: [Int: String] = [:]
        for line in try await sql("SELECT shard || ' ' || holder FROM shard_leases WHERE holder IS NOT NULL")
            .split(separator: "\n")
        {
            let parts = line.split(separator: " ")
            if parts.count == 2, let shard = Int(parts[0]) { holders[shard] = String(parts[1]) }
        }
        return holders
    }

    /// The replica id a server logged at start (`replica.id=...`).
    static func replicaID(_ server: ServeProcess) -> String {
        let log = (try? String(contentsOfFile: server.process.logPath, encoding: .utf8)) ?? ""
        guard let range = log.range(of: #"replica\.id=[^ \]]+"#, options: .regularExpression) else { return "?" }
        return String(log[range].dropFirst("replica.id=".count))
    }

    /// The upstreams of a Caddy handler that get traffic (a weight above 0).
    static func servingDials(_ caddy: CaddyServer, handler: String) async throws -> [String] {
        let body = try await run("/usr/bin/curl", ["-sf", caddy.adminURL + "/id/" + handler]).stdout
        let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        let policy = (object?["load_balancing"] as? [String: Any])?["selection_policy"] as? [String: Any]
        let weights = policy?["weights"] as? [Int] ?? []
        let dials = (object?["upstreams"] as? [[String: Any]] ?? []).map { $0["dial"] as? String ?? "?" }
        return zip(dials, weights).filter { $0.1 > 0 }.map(\.0)
    }

    static func caddyWeights(_ caddy: CaddyServer, handler: String) async throws -> String {
        let body = try await run("/usr/bin/curl", ["-sf", caddy.adminURL + "/id/" + handler]).stdout
        let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        let policy = (object?["load_balancing"] as? [String: Any])?["selection_policy"] as? [String: Any]
        return "\((policy?["weights"] as? [Int]) ?? [])"
    }

    /// Rollout `index`: 10 %, 50 %, 100 %, each held long enough to outlast the kills; its check reads the passing
    /// or the breaching answer.
    static func strategy(_ index: Int, caddy: CaddyServer) -> String {
        """
        apiVersion: sluice.dev/v1
        kind: Strategy
        metadata:
          name: \(name(index))
          namespace: ha
        spec:
          target:
            upstreams:
              stable: ["\(caddy.backendDials[0])"]
              canary: ["\(caddy.backendDials[1])"]
          traffic:
            caddy:
              adminURL: \(caddy.adminURL)
              handlerID: h\(name(index))
          stages:
            - {name: canary, weight: 10, hold: \(hold)s}
            - {name: half, weight: 50, hold: \(hold)s}
            - {name: full, weight: 100, hold: 30s}
          analysis:
            interval: 1s
            providers:
              slo:
                web: {url: "http://\(caddy.backendDials[breaches(index) ? 3 : 2])/budget", jsonPath: value}
            checks:
              - name: budget
                query: search
                min: 0.5

        """
    }
}
