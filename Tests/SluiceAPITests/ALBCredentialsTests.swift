import Foundation
import SluiceAPI
import SluiceController
import SluiceCore
import SluiceHTTP
import SluiceProviders
import SluiceTestSupport
import Testing

/// Passes every request to `base` and counts them by what they ask for.
private final class CountingHTTPClient: HTTPClient, @unchecked Sendable {
    let base: any HTTPClient
    private let lock = NSLock()
    private var requests: [HTTPRequest] = []

    init(_ base: any HTTPClient) { self.base = base }

    /// Requests whose form body has `Action=action` (the AWS query API).
    func calls(action: String) -> Int {
        lock.withLock { requests }.filter {
            String(decoding: $0.body ?? Data(), as: UTF8.self).contains("Action=\(action)")
        }.count
    }

    /// Requests whose URL ends with `suffix`.
    func calls(pathSuffix suffix: String) -> Int { lock.withLock { requests }.filter { $0.url.hasSuffix(suffix) }.count }

    func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        lock.withLock { requests.append(request) }
        return try await base.execute(request)
    }
}

/// The ALB router's AWS credentials as `sluice serve` gets them: `LiveProviderFactory` builds a rollout's router
/// for every tick and every batch of effects, and each of those routers must sign with the same temporary
/// credentials (EKS web identity, EC2 instance metadata), fetched once and renewed before they expire, not
/// fetched again for each tick.
@Suite("ALB credentials across ticks")
struct ALBCredentialsTests {
    /// A strategy whose traffic is moto's ALB.
    static func strategy(_ moto: MotoServer) async throws -> Strategy {
        let fixture = try await moto.createLoadBalancer(credentials: MotoServer.anyCredentials)
        let route = ALBRoute(
            region: moto.region, listenerARN: fixture.listenerARN, stableTargetGroupARN: fixture.stableTargetGroupARN,
            canaryTargetGroupARN: fixture.canaryTargetGroupARN, endpoint: moto.endpoint)
        return Strategy(
            name: "checkout", namespace: "shop", target: .upstreams(stable: ["10.0.0.1:80"], canary: ["10.0.0.2:80"]),
            traffic: .awsALB(route), stages: [Stage(name: "s0-10", weight: 10, hold: .seconds(10))],
            analysis: Analysis())
    }

    /// Three ticks, each with the providers `factory` builds for it: the router sets and reads back a weight.
    static func threeTicks(_ factory: LiveProviderFactory, _ strategy: Strategy) async throws {
        let rollout = Rollout(
            id: "r1", strategy: strategy.key, strategyRevision: 1, version: "v2",
            createdAt: Timestamp(millisecondsSinceEpoch: 1_795_507_200_000))
        for weight in [10, 20, 30] {
            let router = try factory.providers(for: strategy, rollout: rollout).router
            try await router.setCanaryWeight(weight)
            #expect(try await router.canaryWeight() == weight)
        }
    }

    @Test("web identity (IRSA): STS is asked once for three ticks' routers")
    func webIdentityOncePerSession() async throws {
        let moto = try await MotoServer()
        defer { moto.stop() }
        let strategy = try await Self.strategy(moto)
        let directory = try makeTemporaryDirectory("irsa")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzbHVpY2UifQ.c2ln".write(
            toFile: directory + "/token", atomically: true, encoding: .utf8)
        let http = CountingHTTPClient(try CurlClient())
        let factory = LiveProviderFactory(
            metrics: MetricProviderRegistry(client: http, environment: [:]), routerMetrics: RouterMetrics(), http: http,
            kubernetes: nil,
            environment: [
                "AWS_WEB_IDENTITY_TOKEN_FILE": directory + "/token",
                "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/sluice-alb", "AWS_ENDPOINT_URL_STS": moto.endpoint,
                "HOME": directory,
            ])
        try await Self.threeTicks(factory, strategy)
        #expect(http.calls(action: "ModifyListener") == 3)
        #expect(http.calls(action: "AssumeRoleWithWebIdentity") == 1, "one session for every tick's router")
    }

    @Test("EC2 instance metadata v2: one session token and one credentials fetch for three ticks' routers")
    func instanceMetadataOncePerExpiry() async throws {
        let moto = try await MotoServer()
        defer { moto.stop() }
        let strategy = try await Self.strategy(moto)
        let metadata = try await LoopbackHTTPServer()  // serves the IMDSv2 paths (Tests/Support/servers)
        let http = CountingHTTPClient(try CurlClient())
        let factory = LiveProviderFactory(
            metrics: MetricProviderRegistry(client: http, environment: [:]), routerMetrics: RouterMetrics(), http: http,
            kubernetes: nil,
            environment: ["HOME": "/nonexistent", "AWS_EC2_METADATA_SERVICE_ENDPOINT": metadata.baseURL])
        try await Self.threeTicks(factory, strategy)
        #expect(http.calls(action: "ModifyListener") == 3)
        #expect(http.calls(pathSuffix: "/latest/api/token") == 1, "one metadata session for every tick's router")
        #expect(http.calls(pathSuffix: "/security-credentials/sluice-node-role") == 1)
    }
}
