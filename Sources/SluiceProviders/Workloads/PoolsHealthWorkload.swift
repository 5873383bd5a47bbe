import Foundation
import SluiceCore
import SluiceHTTP

/// The workload of an `upstreams` target with `health`: there is nothing to deploy (CI puts the version on the
/// pool before `rollout start`), but the canary is ready only when every member of the pool in the canary role
/// answers the health check with the expected status and, when asked, names the rollout's version.
///
/// Before the canary takes traffic, a failing member keeps it `.progressing` with the member and the reason, so
/// no traffic shifts and decide's progress deadline ends a pool that never becomes healthy. While it serves, a
/// failing member holds the next stage back, and `failureThreshold` failing observations in a row report the
/// canary `.failed` (decide's canaryFailed path: traffic back to stable, rollout Failed). docs/strategy.md says so.
public struct PoolsHealthWorkload: Workload {
    /// The members of the pool in the canary role (`host:port`).
    public let members: [String]
    /// The version each member must name (`health.version`).
    public let version: String
    public let health: HealthCheck
    /// Whether the canary takes traffic now; only then do failures count toward `failureThreshold`.
    public let serving: Bool
    /// The rollout whose failures `streaks` counts.
    public let rollout: String
    private let client: any HTTPClient
    private let streaks: HealthStreaks

    /// `streaks` outlives one tick (the controller builds providers every tick), so pass the same one each time.
    public init(
        members: [String], version: String, health: HealthCheck, serving: Bool, rollout: String,
        client: any HTTPClient, streaks: HealthStreaks
    ) {
        self.members = members
        self.version = version
        self.health = health
        self.serving = serving
        self.rollout = rollout
        self.client = client
        self.streaks = streaks
    }

    public func deployCanary(version: String, weight: Int) async throws {}
    public func promote(version: String) async throws {}
    public func scaleDownCanary() async throws {}
    public func canaryStatus() async throws -> CanaryStatus { try await canaryReport().status }

    /// Probes every member at once; ready with what was seen when all pass, else the failing members and why.
    public func canaryReport() async throws -> CanaryReport {
        let probes = await probeAll()
        let failing = probes.filter { $0.problem != nil }
        guard !failing.isEmpty else {
            streaks.reset(rollout)
            return CanaryReport(status: .ready, evidence: evidence(probes))
        }
        let reason = failing.map { "\($0.member): \($0.problem ?? "")" }.joined(separator: "; ")
        guard serving else {
            streaks.reset(rollout)
            return CanaryReport(status: .progressing("health check \(health.path) failed on \(reason)"))
        }
        let streak = streaks.fail(rollout)
        let status = "health check \(health.path) failed \(streak) of \(health.failureThreshold) times in a row "
            + "while the canary serves traffic, on \(reason)"
        return CanaryReport(status: streak >= health.failureThreshold ? .failed(status) : .progressing(status))
    }

    /// What one member answered.
    struct Probe: Sendable {
        var member: String
        var status: Int?
        var versionSeen: String?
        /// Why the member fails the check; nil when it passes.
        var problem: String?
    }

    private func probeAll() async -> [Probe] {
        await withTaskGroup(of: (Int, Probe).self) { group in
            for (index, member) in members.enumerated() {
                group.addTask { (index, await probe(member)) }
            }
            var probes = [Probe?](repeating: nil, count: members.count)
            for await (index, probe) in group { probes[index] = probe }
            return probes.compactMap { $0 }
        }
    }

    private func probe(_ member: String) async -> Probe {
        var probe = Probe(member: member)
        // One attempt: a failure is evidence, and the next observation probes again.
        let request = HTTPRequest(
            url: "\(health.scheme)://\(member)\(health.path)", timeout: health.timeout,
            connectTimeout: health.timeout, maxResponseBytes: 1 << 20, retry: .none)
        let response: HTTPResponse
        do {
            response = try await client.execute(request)
        } catch let error as HTTPError {
            probe.problem = "GET \(health.path) failed: \(error.code.rawValue) (\(error.message))"
            return probe
        } catch {
            probe.problem = "GET \(health.path) failed: \(error)"
            return probe
        }
        probe.status = response.status
        guard response.status == health.expect else {
            probe.problem = "GET \(health.path) answered \(response.status), expected \(health.expect)"
            return probe
        }
        guard let versionProbe = health.version else { return probe }
        switch Self.version(in: response, at: versionProbe) {
        case .success(let seen):
            probe.versionSeen = seen
            if seen != version { probe.problem = "\(Self.describe(versionProbe)) is \(seen), expected \(version)" }
        case .failure(let problem):
            probe.problem = problem.message
        }
        return probe
    }

    struct VersionProblem: Error {
        var message: String
    }

    /// The version a response names at `probe`. Pure, so every shape is tested without a server.
    static func version(in response: HTTPResponse, at probe: VersionProbe) -> Result<String, VersionProblem> {
        switch probe {
        case .header(let name):
            guard let value = response.header(name) else {
                return .failure(VersionProblem(message: "the answer has no \(name) header"))
            }
            return .success(value.trimmingCharacters(in: .whitespaces))
        case .jsonPath(let path):
            guard let document = try? JSONDecoder().decode(JSONValue.self, from: response.body) else {
                return .failure(VersionProblem(message: "the body is not JSON, so it has no \(path)"))
            }
            var node = document
            for component in path.split(separator: ".").map(String.init) {
                switch node {
                case .object(let fields) where fields[component] != nil: node = fields[component] ?? .null
                case .array(let items) where Int(component).map(items.indices.contains) == true:
                    node = items[Int(component) ?? 0]
                default: return .failure(VersionProblem(message: "the JSON body has no \(path)"))
                }
            }
            switch node {
            case .string(let text): return .success(text)
            case .number(let number):
                return .success(number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : "\(number)")
            default: return .failure(VersionProblem(message: "\(path) in the JSON body is not a string"))
            }
        }
    }

    private static func describe(_ probe: VersionProbe) -> String {
        switch probe {
        case .header(let name): "header \(name)"
        case .jsonPath(let path): "body field \(path)"
        }
    }

    /// The event's account of a passing check: what was probed, and per member the status and version seen.
    private func evidence(_ probes: [Probe]) -> CanaryEvidence {
        var check: [String: JSONValue] = [
            "url": .string("\(health.scheme)://{member}\(health.path)"), "expect": .number(Double(health.expect)),
        ]
        var seen = ""
        if let probe = health.version {
            check["version"] = .string(Self.describe(probe))
            seen = " with \(Self.describe(probe)) = \(version)"
        }
        let members: [JSONValue] = probes.map { probe in
            var fields: [String: JSONValue] = ["member": .string(probe.member)]
            if let status = probe.status { fields["status"] = .number(Double(status)) }
            if let version = probe.versionSeen { fields["version"] = .string(version) }
            return .object(fields)
        }
        return CanaryEvidence(
            checked: true,
            summary: "GET \(health.path) answered \(health.expect)\(seen) on every member of the canary pool "
                + "(\(probes.map(\.member).joined(separator: ", ")))",
            data: ["health": .object(check), "members": .array(members)])
    }
}

/// Failing observations in a row per rollout, kept across ticks (the workload itself lives for one tick). In
/// memory only: after a restart a streak starts again, which delays a rollback by at most `failureThreshold` ticks.
public final class HealthStreaks: @unchecked Sendable {
    private let lock = NSLock()
    private var streaks: [String: Int] = [:]

    public init() {}

    /// Counts one more failing observation of `rollout` and returns the streak.
    func fail(_ rollout: String) -> Int {
        lock.withLock {
            streaks[rollout, default: 0] += 1
            return streaks[rollout] ?? 0
        }
    }

    func reset(_ rollout: String) { _ = lock.withLock { streaks.removeValue(forKey: rollout) } }
}
