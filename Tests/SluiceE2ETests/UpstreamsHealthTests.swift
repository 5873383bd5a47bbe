import Foundation
import SluiceCore
import SluiceHTTP
import SluiceProviders
import SluiceTestSupport
import Testing

/// An `upstreams` canary is checked, not assumed: `sluice serve` (the real binary), a real Caddy, and three
/// loopback servers as pool members (Tests/Support/servers/http_test_server.py `/healthz`). One canary member
/// fails its health check: no traffic shifts to the canary pool, tick after tick. Once it passes, the canary
/// gets its stage's weight and `CanaryDeployed` lists what was verified; when it fails again while serving,
/// the rollout fails and traffic goes back to stable.
@Suite struct UpstreamsHealthTests {
    @Test func noTrafficShiftsToACanaryPoolWhoseHealthCheckFails() async throws {
        let directory = try makeTemporaryDirectory("sluice-e2e-health")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let http = try CurlClient()
        let stable = try await LoopbackHTTPServer()
        let good = try await LoopbackHTTPServer()
        let bad = try await LoopbackHTTPServer()
        defer {
            stable.stop()
            good.stop()
            bad.stop()
        }
        func setHealth(_ server: LoopbackHTTPServer, _ status: Int, _ version: String) async throws {
            let url = server.baseURL + "/set-health?status=\(status)&version=\(version)"
            try #require(try await http.execute(HTTPRequest(url: url, timeout: .seconds(5))).status == 200)
        }
        func probes(_ server: LoopbackHTTPServer) async throws -> Int {
            let answer = try await http.execute(HTTPRequest(url: server.baseURL + "/count?key=probe", timeout: .seconds(5)))
            return Int(String(decoding: answer.body, as: UTF8.self)) ?? 0
        }
        try await setHealth(stable, 200, "v1")
        try await setHealth(good, 200, "v2")
        try await setHealth(bad, 500, "v2")
        let dial = { (server: LoopbackHTTPServer) in "127.0.0.1:\(server.port)" }

        let caddy = try await CaddyServer.start(backendBodies: []) { _ in
            CaddyServer.weightedProxy(id: "shop", dials: [dial(stable)], weights: [1])
        }
        defer { caddy.stop() }
        let router = try CaddyRouter(
            adminURL: caddy.adminURL, handlerID: "shop",
            pools: Pools(stable: [dial(stable)], canary: [dial(good), dial(bad)]), client: http)
        let serve = try await ServeProcess(directory: directory)
        defer { serve.managed.stop() }

        let yaml = """
            apiVersion: sluice.dev/v1
            kind: Strategy
            metadata:
              name: shop
            spec:
              target:
                upstreams:
                  stable: ["\(dial(stable))"]
                  canary: ["\(dial(good))", "\(dial(bad))"]
                  health: {path: "/healthz?key=probe", failureThreshold: 2, version: {header: X-Version}}
              traffic:
                caddy: {adminURL: "\(caddy.adminURL)", handlerID: shop}
              stages:
                - {name: canary, weight: 50, hold: 10m}
                - {name: full, weight: 100}
              analysis:
                interval: 1s

            """
        try yaml.write(toFile: directory + "/shop.yaml", atomically: true, encoding: .utf8)
        let applied = try await serve.cli(["apply", "-f", directory + "/shop.yaml"])
        try #require(applied.status == 0, "sluice apply: \(applied.stdout)\(applied.stderr)")
        let started = try await serve.cli(["rollout", "start", "shop", "--version", "v2"])
        try #require(started.status == 0, "rollout start: \(started.stdout)\(started.stderr)")
        let types = { try await serve.events("shop").map(\.type) }
        let diagnose = { () async -> String in
            let events = (try? await serve.events("shop"))?.map { "\($0.type) \($0.message)" } ?? []
            return "events:\n\(events.joined(separator: "\n"))\nsluice serve:\n\(serve.managed.logTail(2000))"
        }

        // The failing member is probed tick after tick, and the canary gets no traffic meanwhile.
        let before = try await probes(bad)
        try await waitUntil("five more probes of the failing member", timeout: .seconds(30)) {
            try await probes(bad) >= before + 5
        }
        let weightWhileFailing = try await router.canaryWeight()
        let waiting = try await types()
        let diagnosis = await diagnose()
        #expect(weightWhileFailing == 0, "\(diagnosis)")
        #expect(!waiting.contains(.canaryDeployed) && !waiting.contains(.stageStarted), "\(diagnosis)")

        // It passes: the canary is ready, the event says what was verified, Caddy reads back the stage's weight.
        try await setHealth(bad, 200, "v2")
        try await waitUntil("the canary pool to take its 50 %", timeout: .seconds(30)) {
            try await router.canaryWeight() == 50
        }
        let deployed = try #require(try await serve.events("shop").first { $0.type == .canaryDeployed })
        #expect(
            deployed.message
                == "canary v2 is ready for 50% of traffic: GET /healthz?key=probe answered 200 with header X-Version = v2 "
                + "on every member of the canary pool (\(dial(good)), \(dial(bad)))")
        #expect(deployed.data["checked"] == .bool(true))
        #expect(
            deployed.data["members"]
                == .array([good, bad].map {
                    .object(["member": .string(dial($0)), "status": .number(200), "version": .string("v2")])
                }))

        // While it serves, the member fails again: after two failing observations the rollout fails, traffic back.
        try await setHealth(bad, 503, "v2")
        try await waitUntil("the rollout to fail", timeout: .seconds(30)) { try await types().contains(.failed) }
        #expect(try await router.canaryWeight() == 0)
        let rollback = try #require(try await serve.events("shop").first { $0.type == .rollbackStarted })
        #expect(
            rollback.message.contains(
                "health check /healthz?key=probe failed 2 of 2 times in a row while the canary serves traffic, on "
                    + "\(dial(bad)): GET /healthz?key=probe answered 503, expected 200"),
            "\(rollback.message)")
    }
}
