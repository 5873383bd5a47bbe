import Foundation
import SluiceCore
import SluiceHTTP
import Testing

@testable import SluiceProviders

/// Remembers every request and answers each with `response`.
final class RecordingHTTPClient: HTTPClient, @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [HTTPRequest] = []
    let response: HTTPResponse

    init(response: HTTPResponse = HTTPResponse(status: 200)) { self.response = response }

    var requests: [HTTPRequest] { lock.withLock { recorded } }

    func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        lock.withLock { recorded.append(request) }
        return response
    }
}

@Test(arguments: [
    // (canary weight, stable members, canary members, stable member weight, canary member weight)
    (5, 1, 1, 19, 1), (25, 1, 1, 3, 1), (50, 1, 1, 1, 1), (100, 1, 1, 0, 1), (0, 1, 1, 1, 0),
    (25, 2, 1, 3, 2), (10, 3, 2, 6, 1), (33, 1, 1, 67, 33),
])
func memberWeightsKeepThePoolRatio(weight: Int, stables: Int, canaries: Int, stable: Int, canary: Int) {
    let member = TrafficSplit.memberWeights(canaryWeight: weight, stableCount: stables, canaryCount: canaries)
    #expect(member.stable == stable && member.canary == canary)
    let percent = TrafficSplit.percent(
        canary: member.canary * canaries, total: member.stable * stables + member.canary * canaries)
    #expect(percent == weight)
}

@Test func percentRoundsAndRejectsNoTraffic() {
    #expect(TrafficSplit.percent(canary: 1, total: 3) == 33)
    #expect(TrafficSplit.percent(canary: 2, total: 3) == 67)
    #expect(TrafficSplit.percent(canary: 0, total: 0) == nil)
}

@Test(arguments: [-1, 101, 1000, Int.min])
func weightsOutsideTheRangeAreRejectedBeforeAnyCall(weight: Int) async throws {
    let client = RecordingHTTPClient()
    let caddy = try CaddyRouter(adminURL: "http://127.0.0.1:1", handlerID: "checkout", client: client)
    let alb = try ALBRouter(
        route: ALBRoute(
            region: "us-east-1", listenerARN: "arn:aws:elasticloadbalancing:l", stableTargetGroupARN: "arn:tg/s",
            canaryTargetGroupARN: "arn:tg/c"),
        credentials: AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret"), client: client)
    for router in [caddy, alb] as [any TrafficRouter] {
        let error = await #expect(throws: ProviderError.self) { try await router.setCanaryWeight(weight) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("\(weight)") == true)
    }
    #expect(client.requests.isEmpty)
}

@Test func badRouterSettingsAreClearErrors() {
    let client = RecordingHTTPClient()
    #expect(throws: ProviderError.self) { try CaddyRouter(adminURL: "localhost:2019", handlerID: "x", client: client) }
    #expect(throws: ProviderError.self) { try CaddyRouter(adminURL: "http://h:1", handlerID: "a/b", client: client) }
    #expect(throws: ProviderError.self) {
        try CaddyRouter(
            adminURL: "http://h:1", handlerID: "x", pools: Pools(stable: ["a:1"], canary: []), client: client)
    }
    let credentials = AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret")
    let error = #expect(throws: ProviderError.self) {
        try ALBRouter(
            route: ALBRoute(
                region: "us-east-1", listenerARN: "listener-1", stableTargetGroupARN: "arn:s",
                canaryTargetGroupARN: "arn:c"),
            credentials: credentials, client: client)
    }
    #expect(error?.message == "listenerARN 'listener-1' is not an ARN")
}

@Test func credentialsComeFromTheEnvironmentFirst() throws {
    let credentials = try AWSCredentials.resolve(environment: [
        "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_SESSION_TOKEN": "tok",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    ])
    #expect(credentials == AWSCredentials(accessKeyID: "AKIDENV", secretAccessKey: "s3cr3t", sessionToken: "tok"))
    let half = #expect(throws: ProviderError.self) {
        try AWSCredentials.resolve(environment: ["AWS_ACCESS_KEY_ID": "AKIDENV"])
    }
    #expect(half?.message == "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
}

@Test func credentialsFileProfilesAndErrorsNameTheFileNotTheSecret() throws {
    let directory = NSTemporaryDirectory() + "sluice-aws-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: directory + "/.aws", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let file = directory + "/.aws/credentials"
    try """
    # comment
    [default]
    aws_access_key_id = AKIDDEFAULT
    aws_secret_access_key = defaultsecret

    [ci]
    aws_access_key_id=AKIDCI
    aws_secret_access_key=cisecret
    aws_session_token = citoken
    [broken]
    aws_access_key_id = AKIDBROKEN
    """.write(toFile: file, atomically: true, encoding: .utf8)

    #expect(try AWSCredentials.resolve(environment: ["HOME": directory]).accessKeyID == "AKIDDEFAULT")
    let ci = try AWSCredentials.resolve(environment: ["AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "ci"])
    #expect(ci == AWSCredentials(accessKeyID: "AKIDCI", secretAccessKey: "cisecret", sessionToken: "citoken"))
    let broken = #expect(throws: ProviderError.self) {
        try AWSCredentials.resolve(environment: ["HOME": directory, "AWS_PROFILE": "broken"])
    }
    #expect(broken?.message == "profile 'broken' in \(file) has no aws_secret_access_key")
    let missing = #expect(throws: ProviderError.self) {
        try AWSCredentials.resolve(environment: ["HOME": directory, "AWS_PROFILE": "prod"])
    }
    #expect(missing?.message == "profile 'prod' not found in \(file)")
    let none = #expect(throws: ProviderError.self) { try AWSCredentials.resolve(environment: ["HOME": "/nonexistent"]) }
    #expect(none?.message.contains("/nonexistent/.aws/credentials") == true)
}

@Test func registryBuildsTheRouterOfTheRoute() throws {
    let context = RouterContext(
        pools: Pools(stable: ["127.0.0.1:1"], canary: ["127.0.0.1:2"]), http: RecordingHTTPClient(),
        environment: ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"])
    let caddy = try RouterRegistry.router(
        for: .caddy(adminURL: "http://127.0.0.1:2019", handlerID: "checkout"), context: context)
    #expect((caddy as? CaddyRouter)?.pools == context.pools)
    let alb = try RouterRegistry.router(
        for: .awsALB(
            ALBRoute(
                region: "eu-west-1", listenerARN: "arn:l", stableTargetGroupARN: "arn:s", canaryTargetGroupARN: "arn:c")
        ),
        context: context)
    #expect((alb as? ALBRouter)?.endpoint == "https://elasticloadbalancing.eu-west-1.amazonaws.com/")
    let noCluster = #expect(throws: ProviderError.self) {
        try RouterRegistry.router(
            for: .gatewayAPI(httpRoute: "r", stableService: "s", canaryService: "c"), context: context)
    }
    #expect(noCluster?.code == .invalidConfiguration)
    #expect(noCluster?.message.contains("needs a Kubernetes cluster") == true)
    #expect(TrafficRoute.Kind.allCases.map(\.rawValue) == ["gatewayAPI", "nginxIngress", "caddy", "awsALB"])
}

@Test func albErrorXMLBecomesAClearMessageNamingTheListener() async throws {
    let body = """
        <ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">
          <Error><Type>Sender</Type><Code>ListenerNotFound</Code><Message>One or more listeners not found</Message></Error>
          <RequestId>1</RequestId>
        </ErrorResponse>
        """
    let client = RecordingHTTPClient(response: HTTPResponse(status: 400, body: Data(body.utf8)))
    let router = try ALBRouter(
        route: ALBRoute(
            region: "us-east-1", listenerARN: "arn:aws:l/1", stableTargetGroupARN: "arn:s",
            canaryTargetGroupARN: "arn:c"),
        credentials: AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret"), client: client)
    let error = await #expect(throws: ProviderError.self) { try await router.canaryWeight() }
    #expect(
        error?.description
            == "awsALB listener arn:aws:l/1: DescribeListeners failed: ListenerNotFound: One or more listeners not found (HTTP 400)"
    )
    #expect(error?.code == .rejected)
    let sent = try #require(client.requests.first)
    #expect(
        String(decoding: sent.body ?? Data(), as: UTF8.self)
            == "Action=DescribeListeners&Version=2015-12-01&ListenerArns.member.1=arn%3Aaws%3Al%2F1")
    #expect(
        sent.auth
            == .awsSigV4(
                AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret"), region: "us-east-1",
                service: "elasticloadbalancing"))
}
