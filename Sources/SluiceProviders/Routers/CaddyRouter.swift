import Foundation
import SluiceCore
import SluiceHTTP

/// Splits traffic through Caddy's admin API: the `reverse_proxy` handler whose `@id` is `handlerID`,
/// load balanced by `weighted_round_robin`.
///
/// For an `upstreams` target the router writes the handler's upstream list itself (the stable pool,
/// then the canary pool) with each pool's weight spread over its members. Otherwise the handler must
/// already have exactly two upstreams: stable first, canary second. Every write carries the `Etag` of
/// the read it is based on (`If-Match`), so a concurrent edit is re-read and re-checked, never
/// overwritten blindly.
public struct CaddyRouter: TrafficRouter {
    /// The admin endpoint, e.g. `http://127.0.0.1:2019`, without a trailing slash.
    public let adminURL: String
    public let handlerID: String
    /// The pools in their roles for this rollout; nil when the target is not `upstreams`.
    public let pools: Pools?
    let client: any HTTPClient
    let timeout: Duration
    /// How many times a write that lost a race (HTTP 412) is re-read and tried again.
    let conflictAttempts: Int

    /// A router for the handler `handlerID` of the Caddy whose admin API is at `adminURL`.
    public init(
        adminURL: String, handlerID: String, pools: Pools? = nil, client: any HTTPClient,
        timeout: Duration = .seconds(5), conflictAttempts: Int = 3
    ) throws {
        let name = "caddy @id \(handlerID)"
        guard let url = URL(string: adminURL), let scheme = url.scheme, ["http", "https"].contains(scheme),
            url.host != nil
        else {
            throw ProviderError(
                .invalidConfiguration, provider: name, "adminURL '\(Redaction.url(adminURL))' is not an http(s) URL")
        }
        guard !handlerID.isEmpty, !handlerID.contains("/") else {
            throw ProviderError(.invalidConfiguration, provider: name, "handlerID must be a non-empty @id without '/'")
        }
        if let pools, pools.stable.isEmpty || pools.canary.isEmpty {
            throw ProviderError(
                .invalidConfiguration, provider: name, "both the stable and the canary pool need a member")
        }
        self.adminURL = adminURL.hasSuffix("/") ? String(adminURL.dropLast()) : adminURL
        self.handlerID = handlerID
        self.pools = pools
        self.client = client
        self.timeout = timeout
        self.conflictAttempts = max(conflictAttempts, 1)
    }

    var name: String { "caddy @id \(handlerID)" }
    var handlerURL: String { "\(adminURL)/id/\(handlerID)" }

    public func setCanaryWeight(_ weight: Int) async throws {
        try TrafficSplit.validate(weight, router: name)
        for _ in 0..<conflictAttempts {
            let current = try await readHandler()
            let updated = try planned(handler: current.handler, canaryWeight: weight)
            if try await write(updated, ifMatch: current.etag) { return }
            // 412: someone changed the config since our read; the loop re-reads and re-checks it.
        }
        throw ProviderError(
            .conflict, provider: name,
            "the handler kept changing under us; gave up after \(conflictAttempts) attempts", status: 412)
    }

    public func canaryWeight() async throws -> Int {
        let handler = try await readHandler().handler
        let split = try readSplit(handler)
        guard let percent = TrafficSplit.percent(canary: split.canary, total: split.total) else {
            throw ProviderError(.badResponse, provider: name, "no upstream of the handler has a positive weight")
        }
        return percent
    }

    /// Caddy keeps nothing per rollout: the handler stays, with traffic where the last weight put it.
    public func finalize() async throws {}
}

// MARK: - Reading and writing the handler

extension CaddyRouter {
    /// A handler as Caddy serves it, with the `Etag` a write must match.
    struct Snapshot {
        var handler: [String: Any]
        var etag: String
    }

    func readHandler() async throws -> Snapshot {
        let response = try await send(HTTPRequest(method: "GET", url: handlerURL, timeout: timeout))
        // A missing @id is a 404 with {"error": "unknown object ID"}; a missing path is 200 `null`.
        if response.status == 404 || (response.status == 200 && Self.isNull(response.body)) {
            throw ProviderError(
                .rejected, provider: name, "Caddy at \(Redaction.url(adminURL)) has no handler with @id '\(handlerID)'",
                status: response.status)
        }
        guard response.status == 200 else { throw failure(response, doing: "reading the handler") }
        guard let handler = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] else {
            throw ProviderError(.badResponse, provider: name, "the handler is not a JSON object", status: 200)
        }
        guard let etag = response.header("Etag"), !etag.isEmpty else {
            throw ProviderError(
                .badResponse, provider: name,
                "Caddy answered without an Etag, so a concurrent edit could not be detected; Caddy 2.8 or later is needed"
            )
        }
        try checkKind(handler)
        return Snapshot(handler: handler, etag: etag)
    }

    /// Writes the whole handler in one request, so upstreams and weights change together.
    /// Returns false when the config changed since the read (HTTP 412).
    func write(_ handler: [String: Any], ifMatch etag: String) async throws -> Bool {
        let body = try JSONSerialization.data(withJSONObject: handler, options: [.sortedKeys])
        let request = HTTPRequest(
            method: "PATCH", url: handlerURL,
            headers: [("Content-Type", "application/json"), ("If-Match", etag)], body: body, timeout: timeout,
            retry: .none)
        let response = try await send(request)
        if response.status == 412 { return false }
        guard (200..<300).contains(response.status) else { throw failure(response, doing: "writing the weights") }
        return true
    }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        do {
            return try await client.execute(request)
        } catch let error as ProviderError {
            throw error
        } catch {
            throw ProviderError(
                .unavailable, provider: name, "Caddy admin API at \(Redaction.url(adminURL)) did not answer: \(error)")
        }
    }

    /// Caddy's `{"error": "..."}` body as a clear message.
    func failure(_ response: HTTPResponse, doing what: String) -> ProviderError {
        let object = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any]
        let detail = object?["error"] as? String ?? String(decoding: response.body.prefix(300), as: UTF8.self)
        let code: ProviderError.Code = response.status >= 500 && object == nil ? .unavailable : .rejected
        return ProviderError(code, provider: name, "\(what) failed: \(detail)", status: response.status)
    }

    /// Whether `body` is the JSON document `null` (JSON whitespace around it allowed): Caddy's answer for a config
    /// path that holds nothing. Read by the JSON scanner, which stops at the first byte of any other answer;
    /// decoding the body to a `String` and trimming it with Foundation cost ~80 k instructions a tick.
    static func isNull(_ body: Data) -> Bool {
        body.withUnsafeBytes { bytes in
            var scanner = JSONScanner(bytes)
            do {
                guard try scanner.peek() == .null else { return false }
                try scanner.skipValue()
                try scanner.finish()
                return true
            } catch {
                return false
            }
        }
    }
}

// MARK: - The handler's shape and its weights

extension CaddyRouter {
    /// Only a `reverse_proxy` handler balanced by `weighted_round_robin` can be split by weight.
    func checkKind(_ handler: [String: Any]) throws {
        let kind = handler["handler"] as? String ?? "none"
        guard kind == "reverse_proxy" else {
            throw ProviderError(
                .rejected, provider: name, "the handler with @id '\(handlerID)' is '\(kind)', not 'reverse_proxy'")
        }
        let policy = selectionPolicy(handler)?["policy"] as? String ?? "none"
        guard policy == "weighted_round_robin" else {
            throw ProviderError(
                .rejected, provider: name,
                "the reverse_proxy handler with @id '\(handlerID)' uses selection policy '\(policy)', "
                    + "not 'weighted_round_robin'")
        }
    }

    func selectionPolicy(_ handler: [String: Any]) -> [String: Any]? {
        (handler["load_balancing"] as? [String: Any])?["selection_policy"] as? [String: Any]
    }

    func upstreams(_ handler: [String: Any]) -> [[String: Any]] {
        handler["upstreams"] as? [[String: Any]] ?? []
    }

    /// The handler with upstreams and weights for `weight` percent to the canary; every other field kept.
    func planned(handler: [String: Any], canaryWeight weight: Int) throws -> [String: Any] {
        var handler = handler
        let existing = upstreams(handler)
        var newUpstreams: [[String: Any]]
        var weights: [Int]
        if let pools {
            let member = TrafficSplit.memberWeights(
                canaryWeight: weight, stableCount: pools.stable.count, canaryCount: pools.canary.count)
            // An upstream already listed keeps its other settings (max_requests, ...); new ones get a dial only.
            let byDial = Dictionary(existing.compactMap { u in (u["dial"] as? String).map { ($0, u) } }) { a, _ in a }
            newUpstreams = (pools.stable + pools.canary).map { byDial[$0] ?? ["dial": $0] }
            weights = pools.stable.map { _ in member.stable } + pools.canary.map { _ in member.canary }
        } else {
            guard existing.count == 2 else {
                throw ProviderError(
                    .rejected, provider: name,
                    "the handler with @id '\(handlerID)' has \(existing.count) upstreams; without an upstreams "
                        + "target it needs exactly two (stable, then canary)")
            }
            newUpstreams = existing
            let member = TrafficSplit.memberWeights(canaryWeight: weight, stableCount: 1, canaryCount: 1)
            weights = [member.stable, member.canary]
        }
        var policy = selectionPolicy(handler) ?? [:]
        policy["weights"] = weights
        var loadBalancing = handler["load_balancing"] as? [String: Any] ?? [:]
        loadBalancing["selection_policy"] = policy
        handler["load_balancing"] = loadBalancing
        handler["upstreams"] = newUpstreams
        return handler
    }

    /// The weights of the canary and of everything, as Caddy applies them: an upstream beyond the end
    /// of the weights array gets nothing, an upstream in neither pool still takes its share.
    func readSplit(_ handler: [String: Any]) throws -> (canary: Int, total: Int) {
        let list = upstreams(handler)
        let weights = (selectionPolicy(handler)?["weights"] as? [Any] ?? []).map { TrafficSplit.integer($0) ?? 0 }
        var canary = 0
        var total = 0
        for (index, upstream) in list.enumerated() {
            let weight = index < weights.count ? max(weights[index], 0) : 0
            total += weight
            let isCanary: Bool
            if let pools {
                isCanary = (upstream["dial"] as? String).map(pools.canary.contains) ?? false
            } else {
                isCanary = index == 1
            }
            if isCanary { canary += weight }
        }
        return (canary, total)
    }
}

extension CaddyRouter {
    /// The router of a strategy's `traffic.caddy`, over the rollout's pools.
    init(adminURL: String, handlerID: String, context: RouterContext) throws {
        try self.init(adminURL: adminURL, handlerID: handlerID, pools: context.pools, client: context.http)
    }
}

// MARK: - The router's view of the canary

extension CaddyRouter: CanaryHealthReporting {
    /// Caddy's own view of the canary (docs/judge.md "The router's view"): `GET /reverse_proxy/upstreams` lists, per
    /// upstream address, `num_requests` (requests in flight now, not a count of requests served) and `fails` (the
    /// failed requests its passive health checks remember within `fail_duration`). An upstream with `fails` at the
    /// handler's `max_fails` is one Caddy takes for down and sends nothing to. The canary is down when every canary
    /// upstream is. A handler without passive health checks (`health_checks.passive.fail_duration` unset) counts no
    /// failures at all: nil, nothing to go by.
    public func canaryHealth() async throws -> RouterCanaryHealth? {
        let handler = try await readHandler().handler
        guard let passive = (handler["health_checks"] as? [String: Any])?["passive"] as? [String: Any],
            let failDuration = Self.positiveDuration(passive["fail_duration"])
        else { return nil }
        // Caddy's default: one failure within fail_duration marks an upstream down.
        let maxFails = max(TrafficSplit.integer(passive["max_fails"]) ?? 1, 1)
        let canary: [String]
        if let pools {
            canary = pools.canary
        } else {
            let list = upstreams(handler)
            guard list.count == 2, let dial = list[1]["dial"] as? String else { return nil }
            canary = [dial]
        }
        let response = try await send(
            HTTPRequest(method: "GET", url: "\(adminURL)/reverse_proxy/upstreams", timeout: timeout))
        guard response.status == 200 else { throw failure(response, doing: "reading the upstreams' status") }
        guard let entries = (try? JSONSerialization.jsonObject(with: response.body)) as? [[String: Any]] else {
            throw ProviderError(
                .badResponse, provider: name, "/reverse_proxy/upstreams is not a JSON array", status: 200)
        }
        var fails: [String: Int] = [:]
        for entry in entries {
            guard let address = entry["address"] as? String else { continue }
            fails[address] = max(fails[address] ?? 0, TrafficSplit.integer(entry["fails"]) ?? 0)
        }
        let down = canary.filter { (fails[$0] ?? 0) >= maxFails }
        let counted = canary.map { "\(fails[$0] ?? 0) on \($0)" }.joined(separator: ", ")
        let window = "max_fails \(maxFails) within \(failDuration)"
        let summary =
            down.count == canary.count
            ? "Caddy's passive health checks count failed requests \(counted) (\(window)): every canary upstream is down"
            : "Caddy's passive health checks count failed requests \(counted) (\(window)): "
                + "\(down.count) of \(canary.count) canary upstreams down"
        return RouterCanaryHealth(down: !canary.isEmpty && down.count == canary.count, summary: summary)
    }

    /// A Caddy duration that is set and above zero, as text: "10s", or nanoseconds (Caddy takes both in JSON).
    static func positiveDuration(_ value: Any?) -> String? {
        if let text = value as? String {
            let digits = text.filter { $0.isNumber || $0 == "." }
            guard let number = Double(digits), number > 0 else { return nil }
            return text
        }
        if let nanoseconds = TrafficSplit.integer(value), nanoseconds > 0 {
            return "\(Double(nanoseconds) / 1e9)s"
        }
        return nil
    }
}
