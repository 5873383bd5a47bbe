import Foundation
import SluiceCore
import SluiceHTTP
import SluiceTestSupport
import Testing

@testable import SluiceProviders

/// Passes every request to `base` and remembers it with its answer.
final class TappedHTTPClient: HTTPClient, @unchecked Sendable {
    let base: any HTTPClient
    private let lock = NSLock()
    private var seen: [(request: HTTPRequest, response: HTTPResponse?)] = []

    init(_ base: any HTTPClient) { self.base = base }

    var exchanges: [(request: HTTPRequest, response: HTTPResponse?)] { lock.withLock { seen } }

    /// Requests whose form body has `Action=action`.
    func calls(_ action: String) -> [(request: HTTPRequest, response: HTTPResponse?)] {
        exchanges.filter { String(decoding: $0.request.body ?? Data(), as: UTF8.self).contains("Action=\(action)") }
    }

    func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        do {
            let response = try await base.execute(request)
            lock.withLock { seen.append((request, response)) }
            return response
        } catch {
            lock.withLock { seen.append((request, nil)) }
            throw error
        }
    }
}

/// A time a test moves by hand.
final class MovableNow: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = Date()
    var value: Date {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

@Suite("AWS credentials as EKS and EC2 hand them out")
struct AWSCredentialChainTests {
    static let webIdentityToken = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2x1aWNlIn0.c2lnbmF0dXJl"
    static let role = "arn:aws:iam::123456789012:role/sluice-alb"

    static func tokenFile(_ token: String = webIdentityToken) throws -> String {
        let path = try makeTemporaryDirectory("irsa") + "/token"
        try token.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("the standard order: environment keys, web identity, shared file, instance metadata")
    func order() throws {
        let http = RecordingHTTPClient()
        let home = try makeTemporaryDirectory("aws-home")
        try FileManager.default.createDirectory(atPath: home + "/.aws", withIntermediateDirectories: true)
        try "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = filesecret\n"
            .write(toFile: home + "/.aws/credentials", atomically: true, encoding: .utf8)
        let keys = ["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "envsecret"]
        let irsa = ["AWS_WEB_IDENTITY_TOKEN_FILE": try Self.tokenFile(), "AWS_ROLE_ARN": Self.role]

        let fromKeys = try AWSCredentialChain.source(
            environment: keys.merging(irsa) { a, _ in a }.merging(["HOME": home]) { a, _ in a }, http: http)
        #expect((fromKeys as? AWSCredentials)?.accessKeyID == "AKIDENV")

        let fromIRSA = try AWSCredentialChain.source(
            environment: irsa.merging(["HOME": home, "AWS_REGION": "eu-west-1"]) { a, _ in a }, http: http)
        let web = try #require(fromIRSA as? WebIdentityCredentials)
        #expect(web.roleARN == Self.role)
        #expect(web.endpoint == "https://sts.eu-west-1.amazonaws.com/")
        #expect(web.sessionName.hasPrefix("sluice-"))

        let fromFile = try AWSCredentialChain.source(environment: ["HOME": home], http: http)
        #expect((fromFile as? AWSCredentials)?.accessKeyID == "AKIDFILE")

        let fromIMDS = try AWSCredentialChain.source(environment: ["HOME": "/nonexistent"], http: http)
        #expect((fromIMDS as? InstanceMetadataCredentials)?.endpoint == "http://169.254.169.254")
        let overridden = try AWSCredentialChain.source(
            environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9/"], http: http)
        #expect((overridden as? InstanceMetadataCredentials)?.endpoint == "http://127.0.0.1:9")

        let disabled = #expect(throws: ProviderError.self) {
            try AWSCredentialChain.source(
                environment: ["HOME": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"], http: http)
        }
        #expect(disabled?.message.contains("AWS_EC2_METADATA_DISABLED=true") == true)
        let halfIRSA = #expect(throws: ProviderError.self) {
            try AWSCredentialChain.source(environment: ["AWS_WEB_IDENTITY_TOKEN_FILE": "/t"], http: http)
        }
        #expect(halfIRSA?.message.contains("AWS_ROLE_ARN is not") == true)
        #expect(http.requests.isEmpty, "nothing is fetched before the first call")
    }

    @Test("web identity: moto's STS hands out credentials, the ALB router signs with them, renewed before expiry")
    func webIdentityWithMoto() async throws {
        let moto = try await MotoServer()
        defer { moto.stop() }
        let fixture = try await moto.createLoadBalancer(credentials: MotoServer.anyCredentials)
        let http = TappedHTTPClient(try CurlClient())
        let now = MovableNow()
        let source = try AWSCredentialChain.source(
            environment: [
                "AWS_WEB_IDENTITY_TOKEN_FILE": try Self.tokenFile(), "AWS_ROLE_ARN": Self.role,
                "AWS_ROLE_SESSION_NAME": "sluice-test", "AWS_ENDPOINT_URL_STS": moto.endpoint,
            ], http: http, now: { now.value })
        let route = ALBRoute(
            region: moto.region, listenerARN: fixture.listenerARN, stableTargetGroupARN: fixture.stableTargetGroupARN,
            canaryTargetGroupARN: fixture.canaryTargetGroupARN, endpoint: moto.endpoint)
        let router = try ALBRouter(route: route, credentials: source, client: http)
        try await router.setCanaryWeight(25)
        #expect(try await router.canaryWeight() == 25)

        let assumed = http.calls("AssumeRoleWithWebIdentity")
        #expect(assumed.count == 1, "cached between calls")
        let sent = String(decoding: assumed.first?.request.body ?? Data(), as: UTF8.self)
        #expect(sent.contains("RoleSessionName=sluice-test"))
        #expect(sent.contains("WebIdentityToken=\(Self.webIdentityToken)"))
        #expect(assumed.first?.request.headers.contains { $0.name.lowercased() == "authorization" } == false)
        let first = try await source.credentials()
        #expect(first.sessionToken?.isEmpty == false)
        // Every ELBv2 call was signed with the credentials STS gave.
        let signed = http.calls("DescribeListeners") + http.calls("ModifyListener")
        #expect(signed.count >= 3)
        for call in signed {
            guard case .awsSigV4(let used, _, let service) = call.request.auth else {
                Issue.record("unsigned ELBv2 call")
                continue
            }
            #expect(used == first)
            #expect(service == "elasticloadbalancing")
        }

        // Five minutes before they expire (moto's last an hour), they are renewed; before that, kept.
        now.value = Date().addingTimeInterval(3600 - 400)
        #expect(try await source.credentials() == first)
        #expect(http.calls("AssumeRoleWithWebIdentity").count == 1)
        now.value = Date().addingTimeInterval(3600 - 200)
        let renewed = try await source.credentials()
        #expect(http.calls("AssumeRoleWithWebIdentity").count == 2)
        #expect(renewed.accessKeyID != first.accessKeyID)
    }

    @Test("web identity errors name the role and the endpoint, never a secret")
    func webIdentityErrors() async throws {
        let server = try await LoopbackHTTPServer()
        let token = try Self.tokenFile()
        for (endpoint, expected) in [
            (server.baseURL + "/status/403", "failed: HTTP 403"),
            ("http://127.0.0.1:9/", "AssumeRoleWithWebIdentity to http://127.0.0.1:9/ failed"),
        ] {
            let source = WebIdentityCredentials(
                tokenFile: token, roleARN: Self.role, endpoint: endpoint, http: try CurlClient())
            let error = await #expect(throws: ProviderError.self) { try await source.credentials() }
            let text = error.map { "\($0)" } ?? ""
            #expect(text.contains("aws web identity (role \(Self.role))"), "\(text)")
            #expect(text.contains(expected), "\(text)")
            #expect(!text.contains(Self.webIdentityToken))
        }
        let unreadable = WebIdentityCredentials(
            tokenFile: "/nonexistent/token", roleARN: Self.role, endpoint: server.baseURL, http: try CurlClient())
        let error = await #expect(throws: ProviderError.self) { try await unreadable.credentials() }
        #expect(error?.message == "AWS_WEB_IDENTITY_TOKEN_FILE /nonexistent/token cannot be read")
    }

    @Test("instance metadata v2: a session token first, then the role's credentials, renewed before expiry")
    func instanceMetadata() async throws {
        let server = try await LoopbackHTTPServer()
        let http = TappedHTTPClient(try CurlClient())
        let now = MovableNow()
        let source = try AWSCredentialChain.source(
            environment: ["HOME": "/nonexistent", "AWS_EC2_METADATA_SERVICE_ENDPOINT": server.baseURL], http: http,
            now: { now.value })
        let first = try await source.credentials()
        #expect(first.accessKeyID == "ASIAIMDS1")
        #expect(first.sessionToken == "imds-session-token-1")
        #expect(try await source.credentials() == first)
        let paths = http.exchanges.map { "\($0.request.method) \($0.request.url.dropFirst(server.baseURL.count))" }
        #expect(
            paths == [
                "PUT /latest/api/token", "GET /latest/meta-data/iam/security-credentials/",
                "GET /latest/meta-data/iam/security-credentials/sluice-node-role",
            ])
        #expect(http.exchanges.allSatisfy { $0.response?.status == 200 })

        now.value = Date().addingTimeInterval(6 * 3600 - 200)
        let renewed = try await source.credentials()
        #expect(renewed.accessKeyID == "ASIAIMDS2")

        // Without the service: a clear error saying what was tried.
        let absent = InstanceMetadataCredentials(endpoint: "http://127.0.0.1:9", http: try CurlClient())
        let error = await #expect(throws: ProviderError.self) { try await absent.credentials() }
        #expect(error?.message.contains("EC2 instance metadata service did not answer PUT") == true)
    }

    @Test("an unsigned metadata request is refused by the stand-in (it checks the v2 session token)")
    func standInRequiresSession() async throws {
        let server = try await LoopbackHTTPServer()
        let response = try await CurlClient().execute(
            HTTPRequest(url: server.baseURL + "/latest/meta-data/iam/security-credentials/"))
        #expect(response.status == 401)
    }
}
