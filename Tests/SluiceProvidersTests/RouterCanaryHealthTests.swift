import Foundation
import SluiceCore
import SluiceHTTP
import SluiceTestSupport
import Testing

@testable import SluiceProviders

/// The routers' own view of the canary (#23.8, docs/judge.md "The router's view"), against the real things: a
/// real Caddy whose canary app is a separate process that gets killed, and moto's ELBv2 target health.
@Suite struct RouterCanaryHealthTests {
    let client: CurlClient

    init() throws { client = try CurlClient() }

    /// Caddy with passive health checks: while the canary app serves, no failure is counted; once its process is
    /// killed under load, Caddy's failure count reaches max_fails and the router says the canary is down.
    @Test func caddyTakesAKilledCanaryAppForDown() async throws {
        let canary = try await LoopbackHTTPServer()
        defer { canary.stop() }
        let canaryDial = "127.0.0.1:\(canary.port)"
        let caddy = try await CaddyServer.start(backendBodies: ["stable"]) { dials in
            var handler = CaddyServer.weightedProxy(id: "checkout", dials: [dials[0], canaryDial], weights: [1, 0])
            handler["health_checks"] = ["passive": ["fail_duration": "30s", "max_fails": 3]]
            return handler
        }
        defer { caddy.stop() }
        let router = try CaddyRouter(
            adminURL: caddy.adminURL, handlerID: "checkout",
            pools: Pools(stable: [caddy.backendDials[0]], canary: [canaryDial]), client: client)
        try await router.setCanaryWeight(50)
        let served = try await send(20, to: caddy.proxyURL)
        #expect(served.count == 20)
        let serving = try #require(try await router.canaryHealth())
        #expect(!serving.down)
        #expect(
            serving.summary
                == "Caddy's passive health checks count failed requests 0 on \(canaryDial) (max_fails 3 within 30s): "
                + "0 of 1 canary upstreams down")

        canary.process.stop(signal: SIGKILL)
        try await waitUntil("Caddy to count the killed canary's failures", timeout: .seconds(20)) {
            _ = try await send(10, to: caddy.proxyURL)
            return try await router.canaryHealth()?.down == true
        }
        let health = try #require(try await router.canaryHealth())
        #expect(
            health.summary
                == "Caddy's passive health checks count failed requests 3 on \(canaryDial) (max_fails 3 within 30s): "
                + "every canary upstream is down")
        // Caddy itself now sends the canary's share to stable: every request is answered by stable.
        let after = try await send(20, to: caddy.proxyURL)
        #expect(after.allSatisfy { $0 == 200 }, "\(after)")
    }

    /// A handler without passive health checks counts no failures: the router has nothing to go by, and says so
    /// with nil rather than "healthy".
    @Test func caddyWithoutPassiveHealthChecksHasNoView() async throws {
        let caddy = try await CaddyServer.start(backendBodies: ["stable", "canary"]) { dials in
            CaddyServer.weightedProxy(id: "checkout", dials: dials, weights: [1, 1])
        }
        defer { caddy.stop() }
        let router = try CaddyRouter(adminURL: caddy.adminURL, handlerID: "checkout", client: client)
        #expect(try await router.canaryHealth() == nil)
    }

    /// moto's ELBv2: no registered target, a running instance, the same instance stopped (`unused`,
    /// Target.InvalidState, as AWS reports a stopped instance).
    @Test func anALBTakesACanaryTargetGroupWithoutAHealthyTargetForDown() async throws {
        let moto = try await MotoServer()
        defer { moto.stop() }
        let credentials = MotoServer.anyCredentials
        let fixture = try await moto.createLoadBalancer(credentials: credentials)
        let route = ALBRoute(
            region: moto.region, listenerARN: fixture.listenerARN, stableTargetGroupARN: fixture.stableTargetGroupARN,
            canaryTargetGroupARN: fixture.canaryTargetGroupARN, endpoint: moto.endpoint)
        let router = try ALBRouter(route: route, credentials: credentials, client: client)
        let group = try #require(fixture.canaryTargetGroupARN.split(separator: ":").last)

        let empty = try #require(try await router.canaryHealth())
        #expect(empty.down)
        #expect(empty.summary == "the ALB's canary target group \(group) has no registered target")

        let ec2 = { (parameters: [(String, String)]) in
            try await moto.call("ec2", version: "2016-11-15", parameters, credentials: credentials)
        }
        let instance = try await moto.registerRunningInstance(
            in: fixture.canaryTargetGroupARN, of: fixture, credentials: credentials)
        let healthy = try #require(try await router.canaryHealth())
        #expect(!healthy.down)
        #expect(healthy.summary == "the ALB's canary target group \(group): \(instance) healthy")

        try await ec2([("Action", "StopInstances"), ("InstanceId.1", instance)])
        let stopped = try #require(try await router.canaryHealth())
        #expect(stopped.down)
        #expect(
            stopped.summary
                == "the ALB's canary target group \(group): \(instance) unused (Target.InvalidState): no target is healthy")
    }

    /// Sends `count` GETs through Caddy and returns their statuses (a 502 is an answer too).
    func send(_ count: Int, to url: String) async throws -> [Int] {
        var statuses: [Int] = []
        for _ in 0..<count {
            statuses.append(try await client.execute(HTTPRequest(url: url, timeout: .seconds(5))).status)
        }
        return statuses
    }
}
