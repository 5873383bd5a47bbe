import Foundation
import SluiceCore
import SluiceHTTP

/// Splits traffic with an AWS Application Load Balancer: the target-group weights of the listener's
/// forward action (ELBv2 `ModifyListener`), read back with `DescribeListeners`. Requests are
/// form-encoded query-API calls signed with SigV4 by SluiceHTTP.
///
/// The router manages a listener whose default action is one `forward`; it keeps the action's order
/// and stickiness settings and writes exactly two target groups, stable and canary. ELBv2 has no
/// precondition on writes, so a concurrent edit shows up at the next read-back as drift.
public struct ALBRouter: TrafficRouter {
    public let route: ALBRoute
    /// The ELBv2 endpoint requests go to: the route's override, or the region's public endpoint.
    public let endpoint: String
    let credentials: any AWSCredentialSource
    let client: any HTTPClient
    let timeout: Duration

    /// A router for `route`, signing with what `credentials` hands out (see `AWSCredentialChain`).
    public init(
        route: ALBRoute, credentials: any AWSCredentialSource, client: any HTTPClient, timeout: Duration = .seconds(10)
    ) throws {
        let name = "awsALB listener \(route.listenerARN)"
        guard !route.region.isEmpty, route.region.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
            throw ProviderError(
                .invalidConfiguration, provider: name, "region '\(route.region)' is not an AWS region name")
        }
        for (field, arn) in [
            ("listenerARN", route.listenerARN), ("stableTargetGroupARN", route.stableTargetGroupARN),
            ("canaryTargetGroupARN", route.canaryTargetGroupARN),
        ] where !arn.hasPrefix("arn:") {
            throw ProviderError(.invalidConfiguration, provider: name, "\(field) '\(arn)' is not an ARN")
        }
        guard route.stableTargetGroupARN != route.canaryTargetGroupARN else {
            throw ProviderError(
                .invalidConfiguration, provider: name, "stableTargetGroupARN and canaryTargetGroupARN are the same")
        }
        let endpoint = route.endpoint ?? "https://elasticloadbalancing.\(route.region).amazonaws.com/"
        guard let url = URL(string: endpoint), let scheme = url.scheme, ["http", "https"].contains(scheme),
            url.host != nil
        else {
            throw ProviderError(
                .invalidConfiguration, provider: name, "endpoint '\(Redaction.url(endpoint))' is not an http(s) URL")
        }
        self.route = route
        self.endpoint = endpoint
        self.credentials = credentials
        self.client = client
        self.timeout = timeout
    }

    var name: String { "awsALB listener \(route.listenerARN)" }

    public func setCanaryWeight(_ weight: Int) async throws {
        try TrafficSplit.validate(weight, router: name)
        let forward = try await forwardAction()
        var parameters = [
            ("ListenerArn", route.listenerARN),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn", route.stableTargetGroupARN),
            ("DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight", String(100 - weight)),
            ("DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn", route.canaryTargetGroupARN),
            ("DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.Weight", String(weight)),
        ]
        if let order = forward.value("Order") { parameters.append(("DefaultActions.member.1.Order", order)) }
        if let stickiness = forward.path("ForwardConfig", "TargetGroupStickinessConfig"),
            let enabled = stickiness.value("Enabled")
        {
            let prefix = "DefaultActions.member.1.ForwardConfig.TargetGroupStickinessConfig."
            parameters.append((prefix + "Enabled", enabled))
            if let seconds = stickiness.value("DurationSeconds") {
                parameters.append((prefix + "DurationSeconds", seconds))
            }
        }
        _ = try await call("ModifyListener", parameters)
    }

    public func canaryWeight() async throws -> Int {
        let forward = try await forwardAction()
        var canary = 0
        var total = 0
        let groups = forward.path("ForwardConfig", "TargetGroups")?.children("member") ?? []
        if groups.isEmpty, let single = forward.value("TargetGroupArn") {
            // A plain forward to one target group sends it everything.
            total = 1
            canary = single == route.canaryTargetGroupARN ? 1 : 0
        }
        for group in groups {
            let arn = group.value("TargetGroupArn") ?? "?"
            guard let text = group.value("Weight"), let weight = Int(text) else {
                throw ProviderError(.badResponse, provider: name, "target group \(arn) has no numeric weight")
            }
            total += max(weight, 0)
            if arn == route.canaryTargetGroupARN { canary += max(weight, 0) }
        }
        guard let percent = TrafficSplit.percent(canary: canary, total: total) else {
            throw ProviderError(
                .badResponse, provider: name, "no target group of the forward action has a positive weight")
        }
        return percent
    }

    /// The ALB keeps nothing per rollout: both target groups stay, weighted where the last call put them.
    public func finalize() async throws {}
}

// MARK: - The query API

extension ALBRouter {
    /// The listener's single default `forward` action, as DescribeListeners shows it.
    func forwardAction() async throws -> XMLElementTree {
        let result = try await call("DescribeListeners", [("ListenerArns.member.1", route.listenerARN)])
        guard let listener = result.first("Listeners")?.children("member").first else {
            throw ProviderError(.rejected, provider: name, "DescribeListeners returned no listener")
        }
        let actions = listener.child("DefaultActions")?.children("member") ?? []
        let types = actions.map { $0.value("Type") ?? "?" }
        guard actions.count == 1, types == ["forward"] else {
            throw ProviderError(
                .rejected, provider: name,
                "the listener's default actions are [\(types.joined(separator: ", "))]; Sluice manages a listener "
                    + "whose default action is a single forward")
        }
        return actions[0]
    }

    /// Sends one signed query-API call and returns the parsed response, or throws its error clearly.
    func call(_ action: String, _ parameters: [(String, String)]) async throws -> XMLElementTree {
        let fields = [("Action", action), ("Version", "2015-12-01")] + parameters
        let body = fields.map { "\(Self.formEncode($0.0))=\(Self.formEncode($0.1))" }.joined(separator: "&")
        let signing: AWSCredentials
        do {
            signing = try await credentials.credentials()
        } catch let error as ProviderError {
            throw ProviderError(
                error.code, provider: name, "\(action): \(error.provider): \(error.message)", status: error.status)
        } catch {
            throw ProviderError(.unavailable, provider: name, "\(action): no AWS credentials: \(error)")
        }
        let request = HTTPRequest(
            method: "POST", url: endpoint,
            headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")], body: Data(body.utf8),
            timeout: timeout, auth: .awsSigV4(signing, region: route.region, service: "elasticloadbalancing"),
            // Both calls are safe to repeat: one reads, the other sets absolute weights.
            retry: RetryPolicy(retryNonIdempotent: true))
        let response: HTTPResponse
        do {
            response = try await client.execute(request)
        } catch {
            throw ProviderError(.unavailable, provider: name, "\(action) to \(Redaction.url(endpoint)) failed: \(error)")
        }
        let tree = XMLElementTree.parse(response.body)
        guard response.status == 200 else {
            let error = tree?.first("Error")
            let code = error?.value("Code") ?? "HTTP \(response.status)"
            let message = error?.value("Message") ?? String(decoding: response.body.prefix(200), as: UTF8.self)
            let retryable = response.status >= 500 || code.hasPrefix("Throttl") || code == "RequestLimitExceeded"
            throw ProviderError(
                retryable ? .unavailable : .rejected, provider: name, "\(action) failed: \(code): \(message)",
                status: response.status)
        }
        guard let tree else {
            throw ProviderError(
                .badResponse, provider: name, "\(action) answered with something that is not XML", status: 200)
        }
        return tree
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters, as SigV4 expects.
    static func formEncode(_ value: String) -> String {
        let unreserved = CharacterSet(
            charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value
    }
}

extension ALBRouter {
    /// The router of a strategy's `traffic.awsALB`, signing with the environment's AWS credential chain (the
    /// context's shared one when it has one, so temporary credentials outlive the router).
    init(route: ALBRoute, context: RouterContext) throws {
        let credentials =
            try context.awsCredentials?.source()
            ?? AWSCredentialChain.source(environment: context.environment, http: context.http)
        try self.init(route: route, credentials: credentials, client: context.http)
    }
}

// MARK: - The router's view of the canary

extension ALBRouter: CanaryHealthReporting {
    /// The ALB's own view of the canary (docs/judge.md "The router's view"): `DescribeTargetHealth` of the canary
    /// target group. The canary is down when no registered target is `healthy` and none is `initial` (still being
    /// checked for the first time), or when none is registered at all: the ALB has nothing healthy to send the
    /// canary's share to. Each target's state and reason (`unhealthy` Target.FailedHealthChecks, `unused`
    /// Target.InvalidState for a stopped instance, `draining`, ...) is in the summary.
    public func canaryHealth() async throws -> RouterCanaryHealth? {
        let result = try await call("DescribeTargetHealth", [("TargetGroupArn", route.canaryTargetGroupARN)])
        let members = result.first("TargetHealthDescriptions")?.children("member") ?? []
        var states: [String] = []
        var up = false
        for member in members {
            let id = member.child("Target")?.value("Id") ?? "?"
            let state = member.child("TargetHealth")?.value("State") ?? "?"
            let reason = member.child("TargetHealth")?.value("Reason")
            if state == "healthy" || state == "initial" { up = true }
            states.append("\(id) \(state)" + (reason.map { " (\($0))" } ?? ""))
        }
        let group = "canary target group \(route.canaryTargetGroupARN.split(separator: ":").last ?? "")"
        guard !members.isEmpty else {
            return RouterCanaryHealth(down: true, summary: "the ALB's \(group) has no registered target")
        }
        let summary = "the ALB's \(group): \(states.joined(separator: ", "))"
        return RouterCanaryHealth(down: !up, summary: up ? summary : summary + ": no target is healthy")
    }
}
