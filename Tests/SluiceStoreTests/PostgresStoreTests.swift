import Foundation
import Logging
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

@testable import SluiceStore

/// A fresh database on the test process's PostgreSQL cluster (one cluster per process: `initdb` costs seconds).
struct PostgresDatabase {
    let cluster: PostgresCluster
    let name: String

    static func make() async throws -> PostgresDatabase {
        let cluster = try await PostgresCluster.shared()
        return PostgresDatabase(cluster: cluster, name: try await cluster.createDatabase())
    }

    var configuration: PostgresConfiguration {
        PostgresConfiguration(
            host: "127.0.0.1", port: cluster.port, user: PostgresCluster.user, database: name, tls: .disable,
            passwordFile: cluster.passwordFile)
    }

    /// Opens a store (a replica's connection pool) on this database.
    func open(samplesPerCheck: Int = 100) async throws -> PostgresStore {
        try await PostgresStore.open(
            configuration, samplesPerCheck: samplesPerCheck,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// Opens a store on this database, runs `body` with it, and closes it.
    func withStore<T>(samplesPerCheck: Int = 100, _ body: (PostgresStore) async throws -> T) async throws -> T {
        let store = try await open(samplesPerCheck: samplesPerCheck)
        do {
            let result = try await body(store)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }
}

extension StoreBackend {
    /// PostgreSQL: a fresh database on the test process's cluster per store. The stores stay open until the process
    /// ends (their idle connections close after a minute), as the suite's stores have no close.
    static let postgres = StoreBackend(
        name: "postgres",
        empty: { samplesPerCheck in try await PostgresDatabase.make().open(samplesPerCheck: samplesPerCheck) },
        durable: {
            let database = try await PostgresDatabase.make()
            return (try await database.open(), { try await database.open() })
        },
        execute: { store, sql in
            let postgres = try #require(store as? PostgresStore)
            try await PostgresCluster.shared().sql(sql, database: postgres.configuration.database)
        }
    )
}

/// What only the PostgreSQL store has to prove: its log's guarantees hold with several writers (replicas) on one
/// database, the database itself refuses to rewrite history, and a dump restores.
@Suite struct PostgresStoreTests {
    func started(_ store: PostgresStore, name: String) async throws -> Rollout {
        let strategy = Fixtures.strategy(name: name)
        _ = try await store.putStrategy(strategy, now: Fixtures.epoch)
        return try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) { id, stored, pools in
            startDecision(id, stored, pools, now: Fixtures.epoch)
        }.rollout
    }

    @Test func theDatabaseRefusesToUpdateDeleteOrTruncateTheEventLog() async throws {
        let database = try await PostgresDatabase.make()
        try await database.withStore { store in
            _ = try await started(store, name: "checkout")
            for statement in ["UPDATE events SET type = 'Forged'", "DELETE FROM events", "TRUNCATE events"] {
                let refused = try await database.cluster.psql(statement, database: database.name)
                #expect(refused.status != 0, "\(statement) went through")
                #expect(refused.stderr.contains("the event log is append-only"), "\(statement): \(refused.stderr)")
            }
            #expect(try await store.events().map(\.type) == [.rolloutStarted])
        }
    }

    /// Two replicas append events to one database as fast as they can while a third tails the log by `seq`: every
    /// page the reader gets continues exactly where the previous one ended, and it ends with every event once.
    @Test func aReaderTailingBySeqNeverSeesAGapWhileTwoWritersAppend() async throws {
        let database = try await PostgresDatabase.make()
        let decisions = 150
        try await database.withStore { first in
            try await database.withStore { second in
                try await database.withStore { reader in
                    let a = try await started(first, name: "a")
                    let b = try await started(second, name: "b")
                    let total = 2 + 2 * decisions * 2
                    let seen = try await withThrowingTaskGroup(of: [Int64].self) { group in
                        for (store, rollout) in [(first, a), (second, b)] {
                            group.addTask {
                                for index in 0..<decisions {
                                    let tick = TickRecord(rolloutID: rollout.id, now: Fixtures.epoch)
                                    _ = try await store.record(tick) { current, _ in
                                        var decision = step(
                                            current, to: .progressing, weight: index % 100, type: .trafficShifted,
                                            now: Fixtures.epoch)
                                        decision.events.append(decision.events[0])
                                        return decision
                                    }
                                }
                                return []
                            }
                        }
                        group.addTask {
                            // Reads as fast as it can: each page must start right after the last seq seen.
                            var seqs: [Int64] = []
                            var gaps: [String] = []
                            let deadline = ContinuousClock.now + .seconds(120)
                            while (seqs.last ?? 0) < Int64(total), ContinuousClock.now < deadline {
                                let after = seqs.last ?? 0
                                let page = try await reader.events(EventQuery(after: after, limit: 50)).map(\.seq)
                                if page != Array(after + 1..<after + 1 + Int64(page.count)) {
                                    gaps.append("after \(after) the reader got \(page)")
                                }
                                seqs += page
                                if page.isEmpty { try await Task.sleep(for: .milliseconds(1)) }  // polling the log
                            }
                            #expect(gaps.isEmpty, "\(gaps.prefix(5))")
                            return seqs
                        }
                        var all: [Int64] = []
                        for try await seqs in group { all += seqs }
                        return all
                    }
                    #expect(seen == Array(1...Int64(total)))
                    #expect(try await reader.lastSeq() == Int64(total))
                }
            }
        }
    }

    /// The generation check runs in the database: a replica that read a rollout before another replica recorded a
    /// decision of it cannot record one on that stale read.
    @Test func aDecisionOnAReadThatAnotherReplicaOvertookIsRefused() async throws {
        let database = try await PostgresDatabase.make()
        try await database.withStore { first in
            try await database.withStore { second in
                let rollout = try await started(first, name: "checkout")
                let read = try #require(try await first.rolloutRecord(rollout.id))
                _ = try await second.record(TickRecord(rolloutID: rollout.id, now: Fixtures.epoch)) { current, _ in
                    step(current, to: .progressing, weight: 10, type: .trafficShifted, now: Fixtures.epoch)
                }
                await #expect(throws: StoreError(.staleState, "rollout \(rollout.id) changed since it was read")) {
                    _ = try await first.record(TickRecord(rolloutID: rollout.id, basedOn: read, now: Fixtures.epoch)) { current, _ in
                        step(current, to: .progressing, weight: 50, type: .trafficShifted, now: Fixtures.epoch)
                    }
                }
                let stored = try #require(try await second.rolloutRecord(rollout.id))
                #expect(stored.generation == read.generation + 1)
                #expect(stored.rollout.desiredWeight == 10)
                #expect(try await second.events(EventQuery(rollout: rollout.id)).map(\.weight) == [nil, 10])
            }
        }
    }

    /// Replicas starting together migrate once; a store opened again finds the schema in place.
    @Test func replicasOpeningTogetherMigrateOnce() async throws {
        let database = try await PostgresDatabase.make()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<3 {
                group.addTask { try await database.withStore { _ in } }
            }
            try await group.waitForAll()
        }
        let migrations = try await database.cluster.sql(
            "SELECT id FROM schema_migrations ORDER BY id", database: database.name)
        #expect(migrations == PostgresStore.migrations.map { $0.id + "\n" }.joined())
        #expect(try await database.cluster.sql("SELECT COUNT(*) FROM shard_leases", database: database.name) == "64\n")
        let seq = try await database.withStore { store in try await store.lastSeq() }
        #expect(seq == 0)
    }

    /// Two replicas starting a rollout of one strategy at once: exactly one starts it, the other is told it is active.
    @Test func onlyOneOfTwoReplicasStartsARolloutOfAStrategy() async throws {
        let database = try await PostgresDatabase.make()
        try await database.withStore { first in
            try await database.withStore { second in
                let strategy = Fixtures.strategy(name: "checkout")
                _ = try await first.putStrategy(strategy, now: Fixtures.epoch)
                let outcomes = await withTaskGroup(of: Result<String, StoreError>.self) { group in
                    for store in [first, second] {
                        group.addTask {
                            do {
                                return .success(
                                    try await store.startRollout(strategy: strategy.key, now: Fixtures.epoch) {
                                        id, stored, pools in startDecision(id, stored, pools, now: Fixtures.epoch)
                                    }.rollout.id)
                            } catch {
                                return .failure(error as? StoreError ?? StoreError(.database, "\(error)"))
                            }
                        }
                    }
                    var outcomes: [Result<String, StoreError>] = []
                    for await outcome in group { outcomes.append(outcome) }
                    return outcomes
                }
                let started = outcomes.compactMap { try? $0.get() }
                #expect(started.count == 1, "\(outcomes)")
                #expect(outcomes.contains { if case .failure(let error) = $0 { error.code == .activeRollout } else { false } })
                #expect(try await first.activeRollouts().map(\.id) == started)
            }
        }
    }

    /// docs/ha.md's backup path: `pg_dump -Fc` of a live store, `pg_restore` into an empty database, and a store
    /// opened there reads the same strategies, rollouts, events and counter, and appends after them.
    @Test func aDumpRestoresIntoAnotherDatabase() async throws {
        let source = try await PostgresDatabase.make()
        let scratch = try makeTemporaryDirectory("sluice-pg-dump")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let dump = scratch + "/sluice.dump"
        let (rollouts, events) = try await source.withStore { store in
            let rollout = try await started(store, name: "checkout")
            _ = try await store.record(TickRecord(rolloutID: rollout.id, now: Fixtures.epoch)) { current, _ in
                step(current, to: .progressing, weight: 10, type: .trafficShifted, now: Fixtures.epoch)
            }
            return (try await store.rollouts(), try await store.events())
        }
        let cluster = source.cluster
        let dumped = try await run(
            cluster.binDirectory + "/pg_dump",
            ["-Fc", "-h", cluster.directory, "-p", "\(cluster.port)", "-U", PostgresCluster.user, "-f", dump, source.name],
            installHint: PostgresCluster.installHint)
        #expect(dumped.status == 0, "\(dumped.stderr)")
        let target = PostgresDatabase(cluster: cluster, name: try await cluster.createDatabase())
        let restored = try await run(
            cluster.binDirectory + "/pg_restore",
            ["-h", cluster.directory, "-p", "\(cluster.port)", "-U", PostgresCluster.user, "-d", target.name, dump],
            installHint: PostgresCluster.installHint)
        #expect(restored.status == 0, "\(restored.stderr)")
        try await target.withStore { store in
            #expect(try await store.rollouts() == rollouts)
            #expect(try await store.events() == events)
            #expect(try await store.strategies().map(\.key) == [Fixtures.strategy(name: "checkout").key])
            let next = try await store.record(TickRecord(rolloutID: rollouts[0].id, now: Fixtures.epoch)) { current, _ in
                step(current, to: .progressing, weight: 20, type: .trafficShifted, now: Fixtures.epoch)
            }
            #expect(next?.events.map(\.seq) == [events.last!.seq + 1])
            // The restored log is as append-only as the original.
            let refused = try await cluster.psql("DELETE FROM events", database: target.name)
            #expect(refused.status != 0)
        }
    }

    /// PostgreSQL restarts under a store (a failover, an upgrade): while it is down every call fails with a database
    /// error, soon; once it is back the store reconnects by itself, and nothing committed before is lost.
    @Test func aStoreFailsWhileItsDatabaseIsDownAndReconnectsWhenItIsBack() async throws {
        let cluster = try await PostgresCluster.start()
        defer { cluster.stop() }
        var configuration = PostgresDatabase(cluster: cluster, name: try await cluster.createDatabase()).configuration
        configuration.callTimeout = .seconds(2)
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let store = try await PostgresStore.open(configuration, logger: logger)
        do {
            let rollout = try await started(store, name: "checkout")
            cluster.stopServer()
            let down = ContinuousClock.now
            await #expect(throws: StoreError(.database, "cannot read the last event seq: PostgreSQL did not answer within 2.0 seconds")) {
                _ = try await store.lastSeq()
            }
            let failedAfter = ContinuousClock.now - down
            #expect(failedAfter < .seconds(10), "the pool alone waits a minute")
            print("a call to a stopped PostgreSQL failed after \(failedAfter)")
            try await cluster.startServer()
            let up = ContinuousClock.now
            try await waitUntil("the store to reconnect", timeout: .seconds(120)) {
                try await store.lastSeq() == 1
            }
            print("the store reconnected \(ContinuousClock.now - up) after PostgreSQL was back")
            _ = try await store.record(TickRecord(rolloutID: rollout.id, now: Fixtures.epoch)) { current, _ in
                step(current, to: .progressing, weight: 10, type: .trafficShifted, now: Fixtures.epoch)
            }
            #expect(try await store.events().map(\.type) == [.rolloutStarted, .trafficShifted])
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }

    /// Two replicas on one database: B's live stream gets every event A appends, promptly (A's transaction notifies,
    /// B listens; nothing polls), and goes on after PostgreSQL restarts under both, with no gap and no duplicate,
    /// including what A appends before B's listener is back (B wakes every reader when it listens again).
    @Test func aReplicasStreamSeesAnotherReplicasAppendsPromptlyAndAcrossARestart() async throws {
        let cluster = try await PostgresCluster.start()
        defer { cluster.stop() }
        var configuration = PostgresDatabase(cluster: cluster, name: try await cluster.createDatabase()).configuration
        configuration.callTimeout = .seconds(2)
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let a = try await PostgresStore.open(configuration, logger: logger)
        let b = try await PostgresStore.open(configuration, logger: logger)
        let arrivals = Locked<[(seq: Int64, at: ContinuousClock.Instant)]>([])
        let ended = Locked(false)
        let reader = Task {
            for await event in b.eventStream(EventQuery()) {
                arrivals.withLock { $0.append((event.seq, ContinuousClock.now)) }
            }
            ended.withLock { $0 = true }
        }
        func seen() -> [Int64] { arrivals.current.map(\.seq) }
        func append(_ rollout: Rollout, weight: Int) async throws -> (seq: Int64, at: ContinuousClock.Instant) {
            let recorded = try await a.record(TickRecord(rolloutID: rollout.id, now: Fixtures.epoch)) { current, _ in
                step(current, to: .progressing, weight: weight, type: .trafficShifted, now: Fixtures.epoch)
            }
            return (try #require(recorded?.events.last?.seq), ContinuousClock.now)
        }
        do {
            let rollout = try await started(a, name: "checkout")
            try await waitUntil("B's stream to see A's start") { seen() == [1] }
            var latencies: [Duration] = []
            for weight in 1...20 {
                let (seq, committed) = try await append(rollout, weight: weight)
                try await waitUntil("B's stream to see seq \(seq)", timeout: .seconds(5), interval: .milliseconds(1)) {
                    seen().last == seq
                }
                let arrival = try #require(arrivals.current.last { $0.seq == seq }).at
                latencies.append(arrival - committed)
            }
            latencies.sort()
            print("A's append to B's stream: median \(latencies[latencies.count / 2]), max \(latencies.last!)")
            #expect(latencies.last! < .seconds(1))

            cluster.stopServer()
            try await cluster.startServer()
            // A appends as soon as its pool is back, maybe before B listens again.
            try await waitUntil("A to reconnect", timeout: .seconds(60)) { try await a.lastSeq() == 21 }
            let (afterRestart, _) = try await append(rollout, weight: 30)
            // A read B had in flight when PostgreSQL stopped is left behind at its bound, never waited for.
            let restarted = ContinuousClock.now
            try await waitUntil("B's stream to see seq \(afterRestart) after the restart", timeout: .seconds(30)) {
                seen().last == afterRestart
            }
            print("B's stream saw A's first append after the restart \(ContinuousClock.now - restarted) later")
            let (last, _) = try await append(rollout, weight: 40)
            try await waitUntil("B's stream to see seq \(last)", timeout: .seconds(5)) { seen().last == last }
            #expect(seen() == Array(1...last), "no gap, no duplicate")
        } catch {
            let stored = try? await b.lastSeq()
            Issue.record("B's stream ended: \(ended.current); saw up to \(seen().last ?? 0); B reads \(stored ?? -1)")
            reader.cancel()
            await a.close()
            await b.close()
            throw error
        }
        reader.cancel()
        await a.close()
        await b.close()
    }

    /// `sslmode` means what it means to libpq: `verify-full` checks the CA and the server's name, `verify-ca` the CA
    /// alone, `require` only that the connection is encrypted. The cluster's certificate names `localhost` only.
    @Test func tlsVerifiesWhatItsModeSays() async throws {
        let database = try await PostgresDatabase.make()
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        var configuration = database.configuration
        configuration.rootCertificateFile = database.cluster.certificateAuthorityFile
        func opens(host: String, _ mode: PostgresConfiguration.TLSMode, roots: Bool = true) async -> Bool {
            var tried = configuration
            tried.host = host
            tried.tls = mode
            if !roots { tried.rootCertificateFile = nil }
            guard let store = try? await PostgresStore.open(tried, logger: logger) else { return false }
            await store.close()
            return true
        }
        #expect(await opens(host: "localhost", .verifyFull))
        #expect(!(await opens(host: "127.0.0.1", .verifyFull)), "the certificate does not name 127.0.0.1")
        #expect(!(await opens(host: "localhost", .verifyFull, roots: false)), "the system roots do not know the CA")
        #expect(await opens(host: "127.0.0.1", .verifyCA))
        #expect(!(await opens(host: "127.0.0.1", .verifyCA, roots: false)))
        #expect(await opens(host: "127.0.0.1", .require, roots: false))

        // And the connection is encrypted: the server says so while the store holds it.
        configuration.host = "localhost"
        configuration.tls = .verifyFull
        let store = try await PostgresStore.open(configuration, logger: logger)
        _ = try await store.lastSeq()
        let encrypted = try await database.cluster.sql(
            """
            SELECT COUNT(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
            WHERE ssl AND datname = '\(database.name)'
            """, database: "postgres")
        await store.close()
        #expect(encrypted != "0\n", "no TLS connection to \(database.name)")
    }

    /// The password comes from its file: without it (or with a wrong one) the store does not open, and the error names
    /// the store without any password.
    @Test func thePasswordComesFromItsFileAndNeverShows() async throws {
        let database = try await PostgresDatabase.make()
        let directory = try makeTemporaryDirectory("sluice-pg-password")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var wrong = database.configuration
        wrong.passwordFile = directory + "/wrong"
        try "not-the-password\n".write(toFile: wrong.passwordFile!, atomically: true, encoding: .utf8)
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        do {
            _ = try await PostgresStore.open(wrong, logger: logger)
            Issue.record("opened with a wrong password")
        } catch let error as StoreError {
            #expect(error.description.contains(database.configuration.displayName), "\(error)")
            #expect(!error.description.contains("not-the-password"), "\(error)")
        }
        var missing = database.configuration
        missing.passwordFile = directory + "/absent"
        await #expect(throws: StoreError(.database, "cannot read the database password file \(directory)/absent")) {
            _ = try await PostgresStore.open(missing, logger: logger)
        }
    }
}

/// The throwaway cluster itself: it runs, as an unprivileged user when the tests run as root, and its absence is an
/// error that says how to install it.
@Suite struct PostgresClusterTests {
    @Test func withoutPostgreSQLInstalledTheClusterSaysHowToInstallIt() {
        #expect(throws: SupportError.self) { try PostgresCluster.binDirectory(under: "/nonexistent/postgresql") }
        do {
            _ = try PostgresCluster.binDirectory(under: "/nonexistent/postgresql")
        } catch {
            #expect("\(error)".contains("apt-get install -y postgresql"), "\(error)")
        }
    }

    @Test func aClusterStartsAcceptsConnectionsAndIsGoneAfterStop() async throws {
        let started = ContinuousClock.now
        let cluster = try await PostgresCluster.start()
        let startup = ContinuousClock.now - started
        let owner = try await cluster.sql("SELECT current_setting('data_directory')", database: "postgres")
        #expect(owner.hasPrefix(cluster.directory), "\(owner)")
        if geteuid() == 0 {
            let attributes = try FileManager.default.attributesOfItem(atPath: cluster.directory + "/data")
            #expect(attributes[.ownerAccountName] as? String == "nobody")
        }
        cluster.stop()
        #expect(!cluster.isRunning)
        #expect(!FileManager.default.fileExists(atPath: cluster.directory))
        #expect(!canConnect(port: cluster.port))
        print("PostgresCluster.start took \(startup)")  // the figure docs/ha.md and the CI budget cite
    }
}
