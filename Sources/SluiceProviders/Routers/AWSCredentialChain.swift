import Foundation
import SluiceCore
import SluiceHTTP
import Synchronization

/// Where the ALB router's AWS credentials come from. Asked before every call, so a source that hands out
/// temporary credentials (web identity, instance metadata) renews them before they expire.
public protocol AWSCredentialSource: Sendable {
    /// Credentials good for the next request.
    func credentials() async throws -> AWSCredentials
}

extension AWSCredentials: AWSCredentialSource {
    /// Fixed keys are their own source.
    public func credentials() async throws -> AWSCredentials { self }
}

/// The AWS tools' standard order, as EKS and EC2 hand credentials out:
/// 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`) in the environment;
/// 2. web identity (EKS IRSA): `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (+ `AWS_ROLE_SESSION_NAME`),
///    exchanged with STS `AssumeRoleWithWebIdentity`;
/// 3. the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, or `~/.aws/credentials` when it exists);
/// 4. the EC2 instance metadata service v2 (unless `AWS_EC2_METADATA_DISABLED=true`).
/// No error, description or log line carries a key, a session token or the web identity token.
public enum AWSCredentialChain {
    /// The first source of the chain that `environment` configures. Temporary credentials are fetched at the
    /// first call, not here. `now` is the clock expiry is judged by.
    public static func source(
        environment: [String: String], http: any HTTPClient, now: @escaping @Sendable () -> Date = { Date() }
    ) throws -> any AWSCredentialSource {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        if value("AWS_ACCESS_KEY_ID") != nil || value("AWS_SECRET_ACCESS_KEY") != nil {
            return try AWSCredentials.resolve(environment: environment)
        }
        switch (value("AWS_WEB_IDENTITY_TOKEN_FILE"), value("AWS_ROLE_ARN")) {
        case (let tokenFile?, let roleARN?):
            return WebIdentityCredentials(
                tokenFile: tokenFile, roleARN: roleARN, sessionName: value("AWS_ROLE_SESSION_NAME"),
                endpoint: WebIdentityCredentials.endpoint(environment), http: http, now: now)
        case (.some, nil):
            throw ProviderError(
                .invalidConfiguration, provider: "aws credentials",
                "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not (both come from the IRSA webhook)")
        case (nil, .some), (nil, nil):
            break
        }
        let sharedFile = value("AWS_SHARED_CREDENTIALS_FILE") ?? value("HOME").map { $0 + "/.aws/credentials" }
        if value("AWS_SHARED_CREDENTIALS_FILE") != nil || sharedFile.map(FileManager.default.fileExists) == true {
            return try AWSCredentials.resolve(environment: environment)
        }
        if value("AWS_EC2_METADATA_DISABLED")?.lowercased() == "true" {
            throw ProviderError(
                .invalidConfiguration, provider: "aws credentials",
                "no AWS credentials: AWS_ACCESS_KEY_ID and AWS_WEB_IDENTITY_TOKEN_FILE are not set, "
                    + "\(sharedFile ?? "~/.aws/credentials") does not exist, and AWS_EC2_METADATA_DISABLED=true")
        }
        return InstanceMetadataCredentials(
            endpoint: value("AWS_EC2_METADATA_SERVICE_ENDPOINT") ?? InstanceMetadataCredentials.defaultEndpoint,
            http: http, now: now)
    }
}

/// One environment's chain for the life of the process. `sluice serve` builds a rollout's router for every tick
/// and every batch of effects; a chain resolved anew each time would start a new web identity or instance metadata
/// source each time, asking STS (or the metadata service) again on every tick and dropping credentials good for an
/// hour. This keeps the temporary source the chain picks, whose credentials are renewed five minutes before they
/// expire. Keys from the environment or the shared credentials file are read again each time: a rotated file is
/// seen at the next tick. A chain that cannot be resolved throws each time, as `AWSCredentialChain.source` does.
public final class AWSCredentialChainCache: Sendable {
    private let environment: [String: String]
    private let http: any HTTPClient
    private let now: @Sendable () -> Date
    private let kept = Mutex<(any AWSCredentialSource)?>(nil)

    public init(environment: [String: String], http: any HTTPClient, now: @escaping @Sendable () -> Date = { Date() }) {
        self.environment = environment
        self.http = http
        self.now = now
    }

    /// The chain's source: the kept web identity or instance metadata source once there is one.
    public func source() throws -> any AWSCredentialSource {
        if let source = kept.withLock({ $0 }) { return source }
        let source = try AWSCredentialChain.source(environment: environment, http: http, now: now)
        guard source is WebIdentityCredentials || source is InstanceMetadataCredentials else { return source }
        return kept.withLock { kept in
            if let first = kept { return first }  // another router resolved it meanwhile: one cache for all
            kept = source
            return source
        }
    }
}

/// Temporary credentials kept until shortly before they expire; one renewal at a time. A failed renewal
/// keeps handing out the old credentials while they are still valid.
actor ExpiringCredentials {
    typealias Fetched = (credentials: AWSCredentials, expires: Date)
    private var current: Fetched?
    private var renewing: Task<Fetched, any Error>?
    /// How long before expiry they are renewed (the AWS SDKs' five minutes).
    let margin: TimeInterval

    init(margin: TimeInterval = 300) { self.margin = margin }

    func get(now: Date, fetch: @escaping @Sendable () async throws -> Fetched) async throws -> AWSCredentials {
        if let current, now < current.expires.addingTimeInterval(-margin) { return current.credentials }
        let task = renewing ?? Task { try await fetch() }
        renewing = task
        defer { renewing = nil }
        do {
            let fresh = try await task.value
            current = fresh
            return fresh.credentials
        } catch {
            if let current, now < current.expires { return current.credentials }
            throw error
        }
    }
}

/// EKS IAM roles for service accounts: the projected token in `AWS_WEB_IDENTITY_TOKEN_FILE` (read again at each
/// renewal: the kubelet rotates it) exchanged for the role's credentials with STS `AssumeRoleWithWebIdentity`, an
/// unsigned query-API call; renewed five minutes before they expire.
public final class WebIdentityCredentials: AWSCredentialSource {
    public let tokenFile: String
    public let roleARN: String
    public let sessionName: String
    /// The STS endpoint, e.g. `https://sts.eu-west-1.amazonaws.com/`.
    public let endpoint: String
    private let http: any HTTPClient
    private let now: @Sendable () -> Date
    private let cache = ExpiringCredentials()

    public init(
        tokenFile: String, roleARN: String, sessionName: String? = nil, endpoint: String, http: any HTTPClient,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.tokenFile = tokenFile
        self.roleARN = roleARN
        self.sessionName = sessionName ?? "sluice-\(Int(now().timeIntervalSince1970))"
        self.endpoint = endpoint
        self.http = http
        self.now = now
    }

    /// `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`, the regional endpoint of `AWS_REGION` (or
    /// `AWS_DEFAULT_REGION`), else the global `https://sts.amazonaws.com/`.
    static func endpoint(_ environment: [String: String]) -> String {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        if let url = value("AWS_ENDPOINT_URL_STS") ?? value("AWS_ENDPOINT_URL") { return url }
        if let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") {
            return "https://sts.\(region).amazonaws.com/"
        }
        return "https://sts.amazonaws.com/"
    }

    public func credentials() async throws -> AWSCredentials {
        try await cache.get(now: now()) { [self] in try await assumeRole() }
    }

    private var who: String { "aws web identity (role \(roleARN))" }

    private func assumeRole() async throws -> ExpiringCredentials.Fetched {
        guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
            throw ProviderError(.invalidConfiguration, provider: who, "AWS_WEB_IDENTITY_TOKEN_FILE \(tokenFile) cannot be read")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else {
            throw ProviderError(.invalidConfiguration, provider: who, "AWS_WEB_IDENTITY_TOKEN_FILE \(tokenFile) is empty")
        }
        let fields = [
            ("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", roleARN),
            ("RoleSessionName", sessionName), ("WebIdentityToken", token),
        ]
        let body = fields.map { "\(ALBRouter.formEncode($0.0))=\(ALBRouter.formEncode($0.1))" }.joined(separator: "&")
        let request = HTTPRequest(
            method: "POST", url: endpoint,
            headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")], body: Data(body.utf8),
            timeout: .seconds(10), retry: RetryPolicy(retryNonIdempotent: true))
        let response: HTTPResponse
        do {
            response = try await http.execute(request)
        } catch {
            throw ProviderError(
                .unavailable, provider: who,
                "AssumeRoleWithWebIdentity to \(Redaction.url(endpoint)) failed: \(scrub("\(error)", token))")
        }
        let tree = XMLElementTree.parse(response.body)
        guard response.status == 200 else {
            let code = tree?.first("Error")?.value("Code") ?? "HTTP \(response.status)"
            let message = tree?.first("Error")?.value("Message") ?? ""
            throw ProviderError(
                response.status >= 500 ? .unavailable : .rejected, provider: who,
                "AssumeRoleWithWebIdentity at \(Redaction.url(endpoint)) failed: \(code): "
                    + scrub(sanitizedExcerpt(message), token), status: response.status)
        }
        guard let given = tree?.first("Credentials"), let keyID = given.value("AccessKeyId"),
            let secret = given.value("SecretAccessKey"), let stamp = given.value("Expiration"),
            let expires = parseAWSTime(stamp)
        else {
            throw ProviderError(
                .unavailable, provider: who,
                "AssumeRoleWithWebIdentity at \(Redaction.url(endpoint)) answered without Credentials "
                    + "(AccessKeyId, SecretAccessKey, Expiration)")
        }
        return (AWSCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: given.value("SessionToken")), expires)
    }
}

/// The EC2 instance metadata service, version 2: a session token from `PUT /latest/api/token`, then the role
/// name and its credentials under `/latest/meta-data/iam/security-credentials/`; renewed five minutes before
/// they expire.
public final class InstanceMetadataCredentials: AWSCredentialSource {
    public static let defaultEndpoint = "http://169.254.169.254"
    public let endpoint: String
    private let http: any HTTPClient
    private let now: @Sendable () -> Date
    private let cache = ExpiringCredentials()

    public init(endpoint: String = defaultEndpoint, http: any HTTPClient, now: @escaping @Sendable () -> Date = { Date() }) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.http = http
        self.now = now
    }

    public func credentials() async throws -> AWSCredentials {
        try await cache.get(now: now()) { [self] in try await fetch() }
    }

    private let who = "aws instance metadata"

    private func call(_ method: String, _ path: String, headers: [(name: String, value: String)]) async throws -> String {
        let url = endpoint + path
        let response: HTTPResponse
        do {
            // The service is a link-local hop away: a short bound, so a machine without it fails fast.
            response = try await http.execute(
                HTTPRequest(
                    method: method, url: url, headers: headers, timeout: .seconds(2), connectTimeout: .seconds(1),
                    retry: RetryPolicy(maxAttempts: 2, retryNonIdempotent: true)))
        } catch {
            throw ProviderError(
                .unavailable, provider: who,
                "no AWS credentials: not in the environment, no web identity, no shared credentials file, and the "
                    + "EC2 instance metadata service did not answer \(method) \(url): \(error)")
        }
        guard response.status == 200 else {
            throw ProviderError(
                .unavailable, provider: who, "the EC2 instance metadata service answered \(method) \(url) with HTTP \(response.status)",
                status: response.status)
        }
        return String(decoding: response.body, as: UTF8.self)
    }

    private func fetch() async throws -> ExpiringCredentials.Fetched {
        let session = try await call("PUT", "/latest/api/token", headers: [("X-aws-ec2-metadata-token-ttl-seconds", "21600")])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let auth = [(name: "X-aws-ec2-metadata-token", value: session)]
        let base = "/latest/meta-data/iam/security-credentials/"
        guard
            let role = try await call("GET", base, headers: auth).split(whereSeparator: \.isNewline).first
                .map({ $0.trimmingCharacters(in: .whitespaces) }), !role.isEmpty
        else {
            throw ProviderError(
                .invalidConfiguration, provider: who, "the instance has no IAM role (\(endpoint + base) lists none)")
        }
        struct Answer: Decodable {
            var Code: String?
            var AccessKeyId: String?
            var SecretAccessKey: String?
            var Token: String?
            var Expiration: String?
        }
        let text = try await call("GET", base + role, headers: auth)
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(text.utf8)) else {
            throw ProviderError(.unavailable, provider: who, "the credentials of role \(role) are not JSON")
        }
        guard answer.Code == nil || answer.Code == "Success", let keyID = answer.AccessKeyId,
            let secret = answer.SecretAccessKey, let expires = answer.Expiration.flatMap(parseAWSTime)
        else {
            throw ProviderError(
                .unavailable, provider: who,
                "the credentials of role \(role) are not usable (Code \(answer.Code ?? "missing"); AccessKeyId, "
                    + "SecretAccessKey and Expiration are needed)")
        }
        return (AWSCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: answer.Token), expires)
    }
}

/// An ISO 8601 time as AWS writes it, with or without fractional seconds.
func parseAWSTime(_ text: String) -> Date? {
    let plain = ISO8601DateFormatter()
    let fractional = ISO8601DateFormatter()
    fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return plain.date(from: text) ?? fractional.date(from: text)
}

/// `text` with every occurrence of `secret` replaced, for messages a server may have echoed a token into.
private func scrub(_ text: String, _ secret: String) -> String {
    secret.isEmpty ? text : text.replacingOccurrences(of: secret, with: "(redacted)")
}
