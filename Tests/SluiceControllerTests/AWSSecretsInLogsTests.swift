import Foundation
import SluiceController
import SluiceCore
import SluiceHTTP
import SluiceProviders
import SluiceRuntimeTestSupport
import SluiceTestSupport
import Testing

/// The ALB router on web identity (IRSA) credentials inside the real controller: neither the web identity
/// token nor the keys and session token STS hands out reach a log line or an event, when it works and when STS
/// refuses.
@Suite struct AWSSecretsInLogsTests {
    /// The fakes of `FakeProviderFactory`, with `router` instead of theirs.
    struct WithRouter: ProviderFactory {
        let router: any TrafficRouter
        let fakes = FakeProviderFactory()
        func providers(for strategy: Strategy, rollout: Rollout) throws -> RolloutProviders {
            var providers = try fakes.providers(for: strategy, rollout: rollout)
            providers.router = router
            return providers
        }
    }

    static let role = "arn:aws:iam::123456789012:role/sluice-alb"

    @Test func webIdentityTokenAndSessionKeysReachNoLogLineOrEvent() async throws {
        let moto = try await MotoServer()
        defer { moto.stop() }
        let refusing = try await LoopbackHTTPServer()
        defer { refusing.stop() }
        let fixture = try await moto.createLoadBalancer(credentials: MotoServer.anyCredentials)
        // A healthy canary target: without one the ALB router takes the canary for down and the controller rolls
        // it back (#23.8), which is right, but this test wants a rollout that keeps its traffic.
        try await moto.registerRunningInstance(
            in: fixture.canaryTargetGroupARN, of: fixture, credentials: MotoServer.anyCredentials)
        let route = ALBRoute(
            region: moto.region, listenerARN: fixture.listenerARN, stableTargetGroupARN: fixture.stableTargetGroupARN,
            canaryTargetGroupARN: fixture.canaryTargetGroupARN, endpoint: moto.endpoint)
        let token = "eyJhbGciOiJSUzI1NiJ9.irsa-web-identity-secret-4711.c2lnbmF0dXJl"
        let file = try makeTemporaryDirectory("irsa") + "/token"
        try token.write(toFile: file, atomically: true, encoding: .utf8)
        let client = try CurlClient()
        let working = try AWSCredentialChain.source(
            environment: [
                "AWS_WEB_IDENTITY_TOKEN_FILE": file, "AWS_ROLE_ARN": Self.role, "AWS_ENDPOINT_URL_STS": moto.endpoint,
            ], http: client)
        let refused = WebIdentityCredentials(
            tokenFile: file, roleARN: Self.role, endpoint: refusing.baseURL + "/status/403", http: client)

        for (source, works) in [(working, true), (refused as any AWSCredentialSource, false)] {
            let router = try ALBRouter(route: route, credentials: source, client: client)
            let strategy = Fixtures.strategy()
            let harness = try await SecretsInLogsTests.Harness(
                strategy: strategy, providers: WithRouter(router: router), http: client,
                options: SecretsInLogsTests.options)
            _ = try await harness.controller.startRollout(
                strategy: strategy.key, version: "v2", actor: "ci", supersede: false)
            try await harness.settle()
            for _ in 0..<3 {
                harness.clock.advance(by: .seconds(10))
                try await harness.settle()
            }
            await harness.stop()
            let said = try await harness.everythingSaid()
            var secrets = [token, "irsa-web-identity-secret-4711"]
            if works {
                let credentials = try await source.credentials()
                secrets += [credentials.secretAccessKey, try #require(credentials.sessionToken)]
                #expect(try await router.canaryWeight() > 0, "the router worked with STS's credentials")
            } else {
                #expect(said.contains("AssumeRoleWithWebIdentity"), "STS's refusal is logged or recorded:\n\(said)")
            }
            for secret in secrets {
                #expect(!said.contains(secret), "a secret in:\n\(said)")
            }
        }
    }
}
