import Foundation
import SluiceAPI
import SluiceCore
import SluiceTestSupport
import Testing

/// Bodies built to cost the server far more than they weigh, against the real `sluice serve`: they are
/// refused, and `/healthz` answers within 100 ms all the while.
@Suite(.serialized) struct HostileInputTests {
    /// Polls `/healthz` back to back until `stop` is set; the slowest answer and how many were taken.
    final class HealthProbe: @unchecked Sendable {
        private let lock = NSLock()
        private var stopped = false
        private var slowestAnswer: Duration = .zero
        private var answers = 0
        var slowest: Duration { lock.withLock { slowestAnswer } }
        var samples: Int { lock.withLock { answers } }

        func run(_ url: URL) async throws {
            while !lock.withLock({ stopped }) {
                let started = ContinuousClock.now
                let answer = try await send("GET", url, "/healthz")
                let took = ContinuousClock.now - started
                #expect(answer.status == 200)
                lock.withLock {
                    slowestAnswer = max(slowestAnswer, took)
                    answers += 1
                }
            }
        }

        func stop() { lock.withLock { stopped = true } }
    }

    /// Runs `load` while `/healthz` is polled; the probe's figures once `load` is done.
    func whileProbingHealth(
        _ url: URL, _ load: @escaping @Sendable (HealthProbe) async throws -> Void
    ) async throws -> HealthProbe {
        let probe = HealthProbe()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await probe.run(url) }
            group.addTask {
                defer { probe.stop() }
                try await load(probe)
            }
            try await group.waitForAll()
        }
        return probe
    }

    @Test func aliasBombsAreRefusedAndHealthzStaysQuick() async throws {
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let url = URL(string: server.url)!
        let release = ServeProcess.token(.release)
        let probe = try await whileProbingHealth(url) { probe in
            // Rounds of every variant twice at once (more than the server's cores), until /healthz has been
            // asked often enough to tell.
            for round in 0..<50 where round < 3 || probe.samples < 30 {
                try await withThrowingTaskGroup(of: Void.self) { puts in
                    for bomb in YAMLBomb.allCases + YAMLBomb.allCases {
                        puts.addTask {
                            let answer = try await send(
                                "PUT", url, "/v1/strategies/web/bomb", token: release, body: Data(bomb.text.utf8),
                                headers: ["Content-Type": "application/yaml"])
                            #expect(answer.status == 422, "\(bomb): \(answer.text)")
                            #expect(
                                answer.text.contains("aliases expand this file to more than 100000 nodes"),
                                "\(bomb): \(answer.text)")
                        }
                    }
                    try await puts.waitForAll()
                }
            }
        }
        #expect(probe.samples >= 30, "healthz was polled while the bombs were sent")
        #expect(probe.slowest < .milliseconds(100), "slowest /healthz: \(probe.slowest)")
        #expect(server.process.isRunning)
        // The CLI refuses them too; `apply` before sending anything (it reads each document's name first).
        for bomb in [YAMLBomb.quotedHash, .crlfComment] {
            let file = server.directory + "/\(bomb).yaml"
            try bomb.text.write(toFile: file, atomically: true, encoding: .utf8)
            let validated = try await runSluice(["validate", file], timeout: .seconds(10))
            #expect(validated.status == 1)
            #expect(validated.stderr.contains("aliases expand this file"), "\(validated.stderr)")
            let applied = try await runSluice(["apply", "-f", file] + server.tokenArgs(.release), timeout: .seconds(10))
            #expect(applied.status == 1)
            #expect(applied.stderr.contains("aliases expand this file"), "\(applied.stderr)")
        }
    }

    @Test func slowStrategiesAreReadOffTheRequestThreads() async throws {
        // Hundreds of duplicate keys in a large body: each costs one more composition of the whole text,
        // seconds of work that must not run on the threads that answer requests.
        let padding = (0..<9_000).map { "p\($0): [\(String(repeating: "x", count: 90))]" }.joined(separator: "\n")
        let duplicates = (0..<300).map { "d\($0): 1\nd\($0): 2" }.joined(separator: "\n")
        let body = Data((duplicates + "\n" + padding + "\n").utf8)
        #expect(body.count < APIServer.maxBodyBytes)
        let server = try await ServeProcess.start()
        defer { server.stop() }
        let url = URL(string: server.url)!
        let release = ServeProcess.token(.release)
        let probe = try await whileProbingHealth(url) { _ in
            try await withThrowingTaskGroup(of: Void.self) { puts in
                for _ in 0..<3 {
                    puts.addTask {
                        let answer = try await send(
                            "PUT", url, "/v1/strategies/web/slow", token: release, body: body,
                            headers: ["Content-Type": "application/yaml"])
                        // Refused for its duplicates (422), for taking too long (413), or because others are
                        // being read (503): always a clear answer, never a stall.
                        #expect([422, 413, 503].contains(answer.status), "\(answer.status): \(answer.text)")
                        #expect(answer.errorCode != nil, "\(answer.text)")
                    }
                }
                try await puts.waitForAll()
            }
        }
        #expect(probe.samples >= 5)
        // The parse thread takes one of the machine's cores for seconds here (the bombs above take none:
        // they are refused from the event count), so this allows for a busy machine; on the request
        // threads these parses stalled /healthz for minutes.
        #expect(probe.slowest < .milliseconds(500), "slowest /healthz: \(probe.slowest)")
    }

    @Test(arguments: ["v2\"} or vector(1)", "v2\n", "v2\u{1B}[2J", "v 2", "-v2"])
    func aVersionOutsideAnImageTagsCharactersIsRefused(_ version: String) async throws {
        try await withAPIServer { url, backend, _ in
            let body = try JSONEncoder().encode(StartRolloutRequest(strategy: "checkout", namespace: "shop", version: version))
            let answer = try await send(
                "POST", url, "/v1/rollouts", token: TestTokens.token(.ci), body: body,
                headers: ["Content-Type": "application/json"])
            #expect(answer.status == 400, "\(answer.text)")
            #expect(answer.text.contains("is not a valid version: use letters, digits"), "\(answer.text)")
            #expect(try await backend.rollouts(strategy: nil, phase: nil, after: nil, limit: 10).isEmpty)
        }
        let cli = try await runSluice(["rollout", "start", "shop/checkout", "--version=" + version, "--server", "http://127.0.0.1:9"])
        #expect(cli.status == 64, "\(cli.stderr)")
        #expect(cli.stderr.contains("--version"), "\(cli.stderr)")
        #expect(cli.stderr.contains("is not a valid version"), "\(cli.stderr)")
    }
}
