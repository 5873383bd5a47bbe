import Foundation
import SluiceCore
import SluiceHTTP
import SluiceTestSupport
import Testing

@testable import SluiceProviders

/// The Caddy router against a real Caddy: weights written through the admin API, read back, and real
/// requests through the proxy counted by the backend that answered.
@Suite struct RouterCaddyTests {
    let client: CurlClient

    init() throws { client = try CurlClient() }

    @Test func trafficThroughCaddyFollowsEachWeight() async throws {
        let caddy = try await CaddyServer.start(backendBodies: ["stable", "canary"]) { dials in
            CaddyServer.weightedProxy(id: "checkout", dials: dials, weights: [1, 0])
        }
        defer { caddy.stop() }
        let pools = Pools(stable: [caddy.backendDials[0]], canary: [caddy.backendDials[1]])
        let router = try CaddyRouter(adminURL: caddy.adminURL, handlerID: "checkout", pools: pools, client: client)
        for weight in [5, 25, 50, 100, 0] {
            try await router.setCanaryWeight(weight)
            #expect(try await router.canaryWeight() == weight)
            let counts = try await countBodies(at: caddy.proxyURL, requests: 2000)
            #expect(counts.values.reduce(0, +) == 2000, "every request answered: \(counts)")
            let share = Double(counts["canary", default: 0]) / 20.0
            #expect(abs(share - Double(weight)) <= 2, "weight \(weight): canary got \(share)% (\(counts))")
        }
    }

    @Test func poolWeightIsSpreadOverItsMembers() async throws {
        let caddy = try await CaddyServer.start(backendBodies: ["stable", "stable", "canary"]) { dials in
            CaddyServer.weightedProxy(id: "checkout", dials: [dials[0]], weights: [1])
        }
        defer { caddy.stop() }
        let dials = caddy.backendDials
        let router = try CaddyRouter(
            adminURL: caddy.adminURL, handlerID: "checkout",
            pools: Pools(stable: [dials[0], dials[1]], canary: [dials[2]]),
            client: client)
        try await router.setCanaryWeight(25)
        #expect(try await router.canaryWeight() == 25)
        let handler = try await handlerJSON(caddy, "checkout")
        let upstreams = (handler["upstreams"] as? [[String: Any]])?.compactMap { $0["dial"] as? String }
        #expect(upstreams == dials)
        let policy = (handler["load_balancing"] as? [String: Any])?["selection_policy"] as? [String: Any]
        #expect(policy?["weights"] as? [Int] == [3, 3, 2])
        let counts = try await countBodies(at: caddy.proxyURL, requests: 800)
        #expect(counts["canary"] == 200, "\(counts)")
    }

    @Test func withoutPoolsTheHandlersTwoUpstreamsAreStableThenCanary() async throws {
        let caddy = try await CaddyServer.start(backendBodies: ["stable", "canary", "third"]) { dials in
            [
                "handler": "subroute",
                "routes": [
                    [
                        "match": [["path": ["/two"]]],
                        "handle": [CaddyServer.weightedProxy(id: "two", dials: Array(dials[0...1]), weights: [1, 0])],
                    ],
                    ["handle": [CaddyServer.weightedProxy(id: "three", dials: dials, weights: [1, 0, 0])]],
                ],
            ]
        }
        defer { caddy.stop() }
        let two = try CaddyRouter(adminURL: caddy.adminURL, handlerID: "two", client: client)
        try await two.setCanaryWeight(5)
        #expect(try await two.canaryWeight() == 5)
        let weights = (try await handlerJSON(caddy, "two")["load_balancing"] as? [String: Any]).flatMap {
            ($0["selection_policy"] as? [String: Any])?["weights"] as? [Int]
        }
        #expect(weights == [19, 1])
        let counts = try await countBodies(at: caddy.proxyURL + "two", requests: 400)
        #expect(counts["canary"] == 20, "\(counts)")

        let three = try CaddyRouter(adminURL: caddy.adminURL, handlerID: "three", client: client)
        let error = await #expect(throws: ProviderError.self) { try await three.setCanaryWeight(5) }
        #expect(error?.message.contains("@id 'three' has 3 upstreams") == true)
    }

    @Test func aHandEditedWeightReadsBackAsDriftAndIsRestored() async throws {
        let caddy = try await CaddyServer.start(backendBodies: ["stable", "canary"]) { dials in
            CaddyServer.weightedProxy(id: "checkout", dials: dials, weights: [1, 0])
        }
        defer { caddy.stop() }
        let pools = Pools(stable: [caddy.backendDials[0]], canary: [caddy.backendDials[1]])
        let router = try CaddyRouter(adminURL: caddy.adminURL, handlerID: "checkout", pools: pools, client: client)
        try await router.setCanaryWeight(5)
        // Someone edits the weights by hand, the way Caddy's docs show it.
        let edit = try await client.execute(
            HTTPRequest(
                method: "PATCH", url: caddy.adminURL + "/id/checkout/load_balancing/selection_policy/weights",
                headers: [("Content-Type", "application/json")], body: Data("[1,1]".utf8)))
        #expect(edit.status == 200)
        #expect(try await router.canaryWeight() == 50)
        // Caddy silently gives nothing to upstreams beyond a short weights array; the read-back says so.
        _ = try await client.execute(
            HTTPRequest(
                method: "PATCH", url: caddy.adminURL + "/id/checkout/load_balancing/selection_policy/weights",
                headers: [("Content-Type", "application/json")], body: Data("[7]".utf8)))
        #expect(try await router.canaryWeight() == 0)
        try await router.setCanaryWeight(5)
        #expect(try await router.canaryWeight() == 5)
        let counts = try await countBodies(at: caddy.proxyURL, requests: 200)
        #expect(counts["canary"] == 10, "\(counts)")
    }

    @Test func aConcurrentEditIsReReadAndKeptNotOverwritten() async throws {
        let caddy = try await CaddyServer.start(backendBodies: ["stable", "canary"]) { dials in
            CaddyServer.weightedProxy(id: "checkout", dials: dials, weights: [1, 0])
        }
        defer { caddy.stop() }
        let pools = Pools(stable: [caddy.backendDials[0]], canary: [caddy.backendDials[1]])
        // Between the router's read and its write, someone else changes the handler (once).
        let interfering = InterferingHTTPClient(client: client, times: 1) { client, _ in
            try await setFlushInterval(caddy, 1_000_000, client)
        }
        let router = try CaddyRouter(adminURL: caddy.adminURL, handlerID: "checkout", pools: pools, client: interfering)
        try await router.setCanaryWeight(25)
        #expect(interfering.writes == 2, "the first write hit 412 and was retried after a fresh read")
        #expect(try await router.canaryWeight() == 25)
        #expect(try await handlerJSON(caddy, "checkout")["flush_interval"] as? Int == 1_000_000)

        let stubborn = InterferingHTTPClient(client: client, times: 10) { client, attempt in
            try await setFlushInterval(caddy, 2_000_000 + attempt, client)
        }
        let loser = try CaddyRouter(
            adminURL: caddy.adminURL, handlerID: "checkout", pools: pools, client: stubborn, conflictAttempts: 3)
        let error = await #expect(throws: ProviderError.self) { try await loser.setCanaryWeight(50) }
        #expect(error?.code == .conflict)
        #expect(try await router.canaryWeight() == 25)
    }

    @Test func aMissingOrWrongHandlerIsAnErrorNamingTheID() async throws {
        let caddy = try await CaddyServer.start(backendBodies: ["stable", "canary"]) { dials in
            [
                "handler": "subroute",
                "routes": [
                    [
                        "match": [["path": ["/random"]]],
                        "handle": [CaddyServer.weightedProxy(id: "rand", dials: dials, weights: nil, policy: "random")],
                    ],
                    ["handle": [["@id": "hello", "handler": "static_response", "body": "hi"]]],
                ],
            ]
        }
        defer { caddy.stop() }
        let cases: [(id: String, message: String)] = [
            ("nothere", "Caddy at \(caddy.adminURL) has no handler with @id 'nothere'"),
            (
                "rand",
                "the reverse_proxy handler with @id 'rand' uses selection policy 'random', not 'weighted_round_robin'"
            ),
            ("hello", "the handler with @id 'hello' is 'static_response', not 'reverse_proxy'"),
        ]
        for (id, message) in cases {
            let router = try CaddyRouter(adminURL: caddy.adminURL, handlerID: id, client: client)
            let set = await #expect(throws: ProviderError.self) { try await router.setCanaryWeight(10) }
            #expect(set?.message == message)
            #expect(set?.provider == "caddy @id \(id)")
            let read = await #expect(throws: ProviderError.self) { try await router.canaryWeight() }
            #expect(read?.message == message)
        }
    }

    @Test func caddyThatIsNotThereIsUnavailable() async throws {
        let router = try CaddyRouter(
            adminURL: "http://127.0.0.1:\(try freePort())", handlerID: "checkout", client: client)
        let error = await #expect(throws: ProviderError.self) { try await router.canaryWeight() }
        #expect(error?.code == .unavailable)
        #expect(error?.isRetryable == true)
    }

    // MARK: - Helpers

    /// Sends `requests` GETs to `url`, `concurrency` at a time, and counts the answers by body.
    func countBodies(at url: String, requests: Int, concurrency: Int = 16) async throws -> [String: Int] {
        try await withThrowingTaskGroup(of: [String: Int].self) { group in
            for lane in 0..<concurrency {
                group.addTask {
                    var counts: [String: Int] = [:]
                    for _ in stride(from: lane, to: requests, by: concurrency) {
                        let response = try await client.execute(HTTPRequest(url: url, timeout: .seconds(5)))
                        counts[
                            response.status == 200
                                ? String(decoding: response.body, as: UTF8.self) : "HTTP \(response.status)", default: 0
                        ] += 1
                    }
                    return counts
                }
            }
            return try await group.reduce(into: [:]) { total, counts in total.merge(counts, uniquingKeysWith: +) }
        }
    }

    func handlerJSON(_ caddy: CaddyServer, _ id: String) async throws -> [String: Any] {
        let response = try await client.execute(HTTPRequest(url: caddy.adminURL + "/id/" + id))
        return try #require(try JSONSerialization.jsonObject(with: response.body) as? [String: Any])
    }
}

/// Passes requests through, but before each of the first `times` PATCHes runs `edit`: another writer
/// changing the config between the router's read and its write.
final class InterferingHTTPClient: HTTPClient, @unchecked Sendable {
    let client: any HTTPClient
    let edit: @Sendable (any HTTPClient, Int) async throws -> Void
    private let lock = NSLock()
    private var remaining: Int
    private var patches = 0

    init(client: any HTTPClient, times: Int, edit: @escaping @Sendable (any HTTPClient, Int) async throws -> Void) {
        self.client = client
        self.remaining = times
        self.edit = edit
    }

    /// How many PATCHes went through.
    var writes: Int { lock.withLock { patches } }

    func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        if request.method == "PATCH" {
            let (interfere, count) = lock.withLock {
                patches += 1
                remaining -= 1
                return (remaining >= 0, patches)
            }
            if interfere { try await edit(client, count) }
        }
        return try await client.execute(request)
    }
}

/// Another writer's edit: sets the handler's `flush_interval` (POST sets or replaces a field).
private func setFlushInterval(_ caddy: CaddyServer, _ value: Int, _ client: any HTTPClient) async throws {
    let response = try await client.execute(
        HTTPRequest(
            method: "POST", url: caddy.adminURL + "/id/checkout/flush_interval",
            headers: [("Content-Type", "application/json")], body: Data("\(value)".utf8), retry: .none))
    guard response.status == 200 else {
        throw SupportError(
            "editing flush_interval: HTTP \(response.status) \(String(decoding: response.body, as: UTF8.self))")
    }
}
