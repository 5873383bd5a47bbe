import Foundation
import SluiceCore
import SluiceHTTP
import SluiceTestSupport
import Testing

@testable import SluiceProviders

/// The ALB router against moto's ELBv2 with signature checking on: the load balancer, its two target
/// groups and a weighted forward listener are made first, then only the IAM user's key is accepted.
@Suite struct RouterALBTests {
    let client: CurlClient

    init() throws { client = try CurlClient() }

    /// moto with an ALB set up, signature checking on, and the only key it now accepts.
    func loadBalancer() async throws -> (MotoServer, ALBRoute, AWSCredentials, fixedResponseListener: String) {
        let moto = try await MotoServer()
        let fixture = try await moto.createLoadBalancer(credentials: MotoServer.anyCredentials)
        let action = "DefaultActions.member.1"
        let fixed = try await moto.call(
            "elasticloadbalancing", version: "2015-12-01",
            [
                ("Action", "CreateListener"), ("LoadBalancerArn", fixture.loadBalancerARN), ("Protocol", "HTTP"),
                ("Port", "81"), ("\(action).Type", "fixed-response"),
                ("\(action).FixedResponseConfig.StatusCode", "503"),
                ("\(action).FixedResponseConfig.ContentType", "text/plain"),
            ], credentials: MotoServer.anyCredentials)
        let credentials = try await moto.enableAuth()
        let route = ALBRoute(
            region: moto.region, listenerARN: fixture.listenerARN, stableTargetGroupARN: fixture.stableTargetGroupARN,
            canaryTargetGroupARN: fixture.canaryTargetGroupARN, endpoint: moto.endpoint)
        return (moto, route, credentials, try #require(xmlValues("ListenerArn", in: fixed).first))
    }

    @Test func weightsAreSetReadBackAndDriftIsSeen() async throws {
        let (moto, route, credentials, _) = try await loadBalancer()
        defer { moto.stop() }
        let router = try ALBRouter(route: route, credentials: credentials, client: client)
        #expect(try await router.canaryWeight() == 0)
        for weight in [5, 25, 50, 100, 0, 33] {
            try await router.setCanaryWeight(weight)
            #expect(try await router.canaryWeight() == weight)
        }
        let listener = try await moto.call(
            "elasticloadbalancing", version: "2015-12-01",
            [("Action", "DescribeListeners"), ("ListenerArns.member.1", route.listenerARN)], credentials: credentials)
        #expect(xmlValues("TargetGroupArn", in: listener) == [route.stableTargetGroupARN, route.canaryTargetGroupARN])
        #expect(xmlValues("Weight", in: listener) == ["67", "33"])

        // Someone edits the listener by hand: the read-back shows it, the next set restores it.
        let action = "DefaultActions.member.1.ForwardConfig.TargetGroups.member"
        try await moto.call(
            "elasticloadbalancing", version: "2015-12-01",
            [
                ("Action", "ModifyListener"), ("ListenerArn", route.listenerARN),
                ("DefaultActions.member.1.Type", "forward"),
                ("\(action).1.TargetGroupArn", route.stableTargetGroupARN), ("\(action).1.Weight", "40"),
                ("\(action).2.TargetGroupArn", route.canaryTargetGroupARN), ("\(action).2.Weight", "60"),
            ], credentials: credentials)
        #expect(try await router.canaryWeight() == 60)
        try await router.setCanaryWeight(33)
        #expect(try await router.canaryWeight() == 33)
    }

    @Test func errorsAreClearAndSecretsStayOut() async throws {
        let (moto, route, credentials, fixedListener) = try await loadBalancer()
        defer { moto.stop() }
        let wrong = AWSCredentials(accessKeyID: credentials.accessKeyID, secretAccessKey: "not-the-secret-0123456789")
        let router = try ALBRouter(route: route, credentials: wrong, client: client)
        for attempt in [{ try await router.setCanaryWeight(10) }, { _ = try await router.canaryWeight() }] {
            let error = await #expect(throws: ProviderError.self) { try await attempt() }
            #expect(error?.code == .rejected)
            #expect(
                error?.message.hasPrefix("DescribeListeners failed: SignatureDoesNotMatch: ") == true,
                "\(String(describing: error))")
            #expect(error?.provider == "awsALB listener \(route.listenerARN)")
            #expect(error?.status == 403)
            #expect(error?.description.contains("not-the-secret") == false)
            #expect(error?.description.contains(credentials.secretAccessKey) == false)
        }
        // The right key still works, and the failed attempts changed nothing.
        let right = try ALBRouter(route: route, credentials: credentials, client: client)
        #expect(try await right.canaryWeight() == 0)

        // A listener that is not there, or whose default action is not a forward, is named clearly.
        var missing = route
        missing.listenerARN = route.listenerARN + "0"
        let error = await #expect(throws: ProviderError.self) {
            try await ALBRouter(route: missing, credentials: credentials, client: client).setCanaryWeight(5)
        }
        #expect(
            error?.message.hasPrefix("DescribeListeners failed: ListenerNotFound") == true,
            "\(String(describing: error))")
        #expect(error?.provider == "awsALB listener \(missing.listenerARN)")

        var fixed = route
        fixed.listenerARN = fixedListener
        let refused = await #expect(throws: ProviderError.self) {
            try await ALBRouter(route: fixed, credentials: credentials, client: client).setCanaryWeight(5)
        }
        #expect(
            refused?.message
                == "the listener's default actions are [fixed-response]; Sluice manages a listener whose default action is a single forward"
        )
    }

    @Test func credentialsFromAFileReachMotoThroughTheRegistry() async throws {
        let (moto, route, credentials, _) = try await loadBalancer()
        defer { moto.stop() }
        let directory = try makeTemporaryDirectory("sluice-aws")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/credentials"
        try
            "[ci]\naws_access_key_id = \(credentials.accessKeyID)\naws_secret_access_key = \(credentials.secretAccessKey)\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let context = RouterContext(
            http: client, environment: ["AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "ci", "HOME": directory])
        let router = try RouterRegistry.router(for: .awsALB(route), context: context)
        try await router.setCanaryWeight(20)
        #expect(try await router.canaryWeight() == 20)
    }
}
