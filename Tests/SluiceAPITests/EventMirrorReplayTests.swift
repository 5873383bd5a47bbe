import Foundation
import Logging
import SluiceCore
import SluiceHTTP
import SluiceKubernetes
import SluiceStore
import SluiceTestSupport
import Testing

@testable import SluiceAPI

/// The Kubernetes Event mirror of `sluice serve` is at least once: its cursor survives the process.
@Suite struct EventMirrorReplayTests {
    static let epoch = Timestamp(millisecondsSinceEpoch: 1_795_000_000_000)

    @Test func eventsCommittedWhileTheServerWasDownAreMirroredByTheNextStart() async throws {
        let (sim, client, store, strategy) = try await Self.world()
        defer { sim.stop() }

        // First life: the mirror runs and posts the rollout's first events, then the process dies.
        let first = Task { try await Self.service(store, client).run() }
        let (rollout, started) = try await Self.startMirrored(strategy, store, client)
        first.cancel()
        _ = try? await first.value

        // While nothing mirrors, a command is recorded.
        _ = try await store.record(TickRecord(rolloutID: rollout.id, now: Self.epoch)) { current, stored in
            decide(current, strategy: stored.strategy, input: .command(.pause(actor: "oncall")), now: Self.epoch)
        }
        let last = try await store.lastSeq()
        #expect(last > started)

        // Second life: its events are posted now, each once.
        let second = Task { try await Self.service(store, client).run() }
        defer { second.cancel() }
        try await waitUntil("the events recorded while down mirrored", interval: .milliseconds(5)) {
            try await Self.mirrored(client).count == last
        }
        #expect(try await Self.mirrored(client) == (1...last).map { "checkout.sluice-\($0)" })
        try await waitUntil("the cursor at the end", interval: .milliseconds(5)) {
            try await store.deliveryCursor(sink: DeliverySink.kubernetesEvents) == last
        }
    }

    /// With several replicas one mirrors (docs/ha.md "Notifications"): of two mirrors on one store only the one
    /// that leads posts, so each event is posted once; when the lead moves, the other goes on from the stored cursor.
    @Test func onlyTheMirrorThatLeadsPostsAndTheNextGoesOnFromItsCursor() async throws {
        let (sim, client, store, strategy) = try await Self.world()
        defer { sim.stop() }
        let leader = Locked(0)
        let mirrors = (0..<2).map { index in
            Task { try await Self.service(store, client, leads: { leader.current == index }).run() }
        }
        defer { mirrors.forEach { $0.cancel() } }
        let (rollout, started) = try await Self.startMirrored(strategy, store, client)

        leader.withLock { $0 = 1 }
        _ = try await store.record(TickRecord(rolloutID: rollout.id, now: Self.epoch)) { current, stored in
            decide(current, strategy: stored.strategy, input: .command(.pause(actor: "oncall")), now: Self.epoch)
        }
        let last = try await store.lastSeq()
        #expect(last > started)
        try await waitUntil("the events after the lead moved mirrored", interval: .milliseconds(5)) {
            try await Self.mirrored(client).count == last
        }
        #expect(try await Self.mirrored(client) == (1...last).map { "checkout.sluice-\($0)" })
        let posts = try await sim.requests().filter { $0.method == "POST" && $0.path.hasSuffix("/events") }
        #expect(posts.count == Int(last), "each event posted once, by one mirror: \(posts.map(\.status))")
    }

    /// Once a running mirror has its cursor, starts a rollout of `strategy` and waits until its first events are
    /// mirrored; returns the rollout and the last `seq` then.
    static func startMirrored(_ strategy: Strategy, _ store: Store, _ client: KubernetesClient) async throws
        -> (Rollout, Int64)
    {
        try await waitUntil("the mirror's cursor", interval: .milliseconds(5)) {
            try await store.deliveryCursor(sink: DeliverySink.kubernetesEvents) != nil
        }
        let rollout = try await store.startRollout(strategy: strategy.key, now: Self.epoch) { id, stored, pools in
            Rollout.start(
                id: id, strategy: stored.strategy, revision: stored.revision, version: "v2", actor: "ci", pools: pools,
                now: Self.epoch)
        }.rollout
        let started = try await store.lastSeq()
        try await waitUntil("the first events mirrored", interval: .milliseconds(5)) {
            try await Self.mirrored(client).count == started
        }
        return (rollout, started)
    }

    /// The simulator with the stable Deployment, a client of it, and a store holding a Deployment-target strategy.
    static func world() async throws -> (KubeSimulator, KubernetesClient, Store, Strategy) {
        let sim = try await KubeSimulator(objects: [Self.deployment])
        do {
            let client = KubernetesClient(
                config: try ClusterConfig.fromKubeconfig(paths: [try sim.writeKubeconfig(current: "admin")]),
                http: try CurlClient())
            let store = try Store(path: try makeTemporaryDirectory("sluice-mirror") + "/sluice.db")
            let strategy = Strategy(
                name: "checkout", namespace: "shop", target: .deployment(name: "checkout", container: nil),
                traffic: .gatewayAPI(httpRoute: "checkout", stableService: "checkout", canaryService: "checkout-canary"),
                stages: [Stage(name: "s0", weight: 5, hold: .seconds(30))], analysis: Analysis())
            _ = try await store.putStrategy(strategy, now: Self.epoch)
            return (sim, client, store, strategy)
        } catch {
            sim.stop()
            throw error
        }
    }

    static func service(
        _ store: Store, _ client: KubernetesClient, leads: @escaping @Sendable () -> Bool = { true }
    ) -> EventMirrorService {
        let logger = Logger(label: "mirror", factory: { _ in SwiftLogNoOpLogHandler() })
        return EventMirrorService(
            store: store, sink: EventMirrorSink(mirror: EventMirror(client: client), logger: logger), logger: logger,
            leads: leads)
    }

    /// The names of the Events in `shop`, in `seq` order.
    static func mirrored(_ client: KubernetesClient) async throws -> [String] {
        try await client.events("shop").list().compactMap(\.metadata.name).sorted {
            (Int($0.split(separator: "-").last ?? "") ?? 0) < (Int($1.split(separator: "-").last ?? "") ?? 0)
        }
    }

    static var deployment: [String: Any] {
        [
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": ["name": "checkout", "namespace": "shop", "labels": ["app": "checkout"]],
            "spec": [
                "replicas": 2, "selector": ["matchLabels": ["app": "checkout"]],
                "template": [
                    "metadata": ["labels": ["app": "checkout"]],
                    "spec": ["containers": [["name": "app", "image": "registry.example/checkout:v1"]]],
                ],
            ],
        ]
    }
}
