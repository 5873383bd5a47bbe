import Foundation
import InMemoryLogging
import Logging
import SluiceCore
import SluiceKubernetes
import SluiceTestSupport
import Testing

@Suite("Sluice events mirrored as Kubernetes Events")
struct EventMirrorTests {
    static func event(_ seq: Int64, _ type: EventType, _ message: String, reason: String? = nil) -> SluiceCore.Event {
        SluiceCore.Event(
            seq: seq, time: Timestamp(millisecondsSinceEpoch: 1_795_000_000_000 + seq * 1000), rollout: "r-0001",
            strategy: StrategyKey(namespace: "shop", name: "checkout"), type: type, weight: 25, reason: reason,
            message: message)
    }

    @Test(
        "reason is the event type; Normal or Warning",
        arguments: [
            (EventType.trafficShifted, "Normal"), (.stageStarted, "Normal"), (.promoted, "Normal"),
            (.checkBreached, "Warning"), (.rollbackStarted, "Warning"), (.rolledBack, "Warning"), (.failed, "Warning"),
        ])
    func mapping(type: EventType, kind: String) async throws {
        let c = try await DeploymentWorkloadTests.cluster()
        let mirror = EventMirror(client: c.client, instance: "sluice-0")
        let posted = try #require(
            try await mirror.mirror(
                Self.event(7, type, "something happened"), deployment: "checkout", namespace: "shop"))
        #expect(posted.reason == type.rawValue)
        #expect(posted.type == kind)
        #expect(posted.involvedObject.kind == "Deployment")
        #expect(posted.involvedObject.name == "checkout")
        #expect(posted.involvedObject.uid == (try await c.client.deployments("shop").get("checkout")).metadata.uid)
        #expect(posted.message == "[r-0001] something happened")
        #expect(posted.source?.component == "sluice")
        #expect(posted.reportingInstance == "sluice-0")
    }

    @Test("kubectl get events and kubectl describe deploy show the rollout; a replayed event is not duplicated")
    func kubectlShowsThem() async throws {
        let c = try await DeploymentWorkloadTests.cluster()
        let mirror = EventMirror(client: c.client)
        let events = [
            Self.event(1, .rolloutStarted, "rollout of v2 started"),
            Self.event(2, .trafficShifted, "25% of traffic to the canary"),
            Self.event(3, .checkBreached, "error-rate 0.05 > 0.01", reason: "error-rate"),
            Self.event(4, .rolledBack, "traffic back to stable"),
        ]
        for event in events { try await mirror.mirror(event, deployment: "checkout", namespace: "shop") }
        // A replay after a restart: no second Event, and no call beyond the create (RBAC: events create only).
        #expect(try await mirror.mirror(events[1], deployment: "checkout", namespace: "shop") == nil)
        let eventCalls = try await c.sim.requests().filter { $0.path.contains("/events") }.map(\.method)
        #expect(eventCalls == ["POST", "POST", "POST", "POST", "POST"])
        #expect(try await c.client.events("shop").list().count == 4)

        let home = try makeTemporaryDirectory("kubectl-home")
        let list = try await runKubectl(["get", "events", "-n", "shop"], kubeconfig: c.kubeconfig, home: home)
        #expect(list.status == 0, "\(list.stderr)")
        for reason in ["RolloutStarted", "TrafficShifted", "CheckBreached", "RolledBack"] {
            #expect(list.stdout.contains(reason), "\(reason) in \(list.stdout)")
        }
        #expect(list.stdout.contains("Warning   CheckBreached"))
        let describe = try await runKubectl(
            ["describe", "deploy", "checkout", "-n", "shop"], kubeconfig: c.kubeconfig, home: home)
        #expect(describe.stdout.contains("Normal   TrafficShifted"), "\(describe.stdout)")
        #expect(describe.stdout.contains("[r-0001] error-rate 0.05 > 0.01 (error-rate)"))
    }

    @Test("a Deployment created again between two rollouts: the next rollout's Events carry its new uid")
    func uidPerRollout() async throws {
        let c = try await DeploymentWorkloadTests.cluster()
        let mirror = EventMirror(client: c.client)
        let first = try #require(
            try await mirror.mirror(Self.event(1, .promoted, "done"), deployment: "checkout", namespace: "shop"))
        try await c.client.deployments("shop").delete("checkout")
        let again = try await c.client.deployments("shop").create(
            try JSONDecoder().decode(
                Deployment.self,
                from: JSONSerialization.data(
                    withJSONObject: Manifests.deployment(
                        "checkout", image: "registry.example/checkout:v2", replicas: 2, namespace: "shop"))))
        var next = Self.event(2, .rolloutStarted, "rollout of v3 started")
        next.rollout = "r-0002"
        let second = try #require(try await mirror.mirror(next, deployment: "checkout", namespace: "shop"))
        #expect(first.involvedObject.uid != again.metadata.uid)
        #expect(second.involvedObject.uid == again.metadata.uid)
    }

    @Test("the sink posts in the order given, and a replay creates nothing")
    func sinkKeepsOrder() async throws {
        let c = try await DeploymentWorkloadTests.cluster()
        let logs = InMemoryLogHandler()
        let sink = EventMirrorSink(mirror: EventMirror(client: c.client), logger: Logger(label: "t") { _ in logs })
        let types: [EventType] = [.rolloutStarted, .canaryDeployed, .stageStarted, .trafficShifted, .stageCompleted]
        for seq in 1...40 {
            await sink.post(Self.event(Int64(seq), types[seq % 5], "step \(seq)"), deployment: "checkout", namespace: "shop")
        }
        await sink.post(Self.event(3, types[3], "step 3"), deployment: "checkout", namespace: "shop")
        #expect(sink.counts.mirrored == 40 && sink.counts.replayed == 1 && sink.counts.failed == 0)
        let posted = try await c.sim.requests().filter { $0.method == "POST" && $0.path.hasSuffix("/events") }
            .compactMap { request -> Int? in
                let body = try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any]
                let name = (body?["metadata"] as? [String: Any])?["name"] as? String
                return name.flatMap { Int($0.split(separator: "-").last ?? "") }
            }
        #expect(posted == Array(1...40) + [3])
        #expect(logs.entries.isEmpty)
    }

    @Test("a failing API server: a warning per event without the token, counted, and the sink goes on")
    func failingServerIsAWarning() async throws {
        let c = try await SimCluster(
            objects: [
                Manifests.deployment("checkout", image: "registry.example/checkout:v1", replicas: 2, namespace: "shop")
            ],
            options: .init(requestTimeout: .seconds(5), maxServerAttempts: 2, serverRetryDelay: .milliseconds(5)))
        try await c.sim.setFaults(fraction: 1, kinds: ["500"], pathContains: "/events")
        let logs = InMemoryLogHandler()
        let sink = EventMirrorSink(mirror: EventMirror(client: c.client), logger: Logger(label: "t") { _ in logs })
        for seq in 1...3 {
            await sink.post(Self.event(Int64(seq), .trafficShifted, "step"), deployment: "checkout", namespace: "shop")
        }
        #expect(sink.counts.failed == 3 && sink.counts.mirrored == 0)
        #expect(logs.entries.count == 3)
        for entry in logs.entries {
            #expect(entry.level == .warning)
            let text = "\(entry.message) \(entry.metadata)"
            #expect(text.contains("InternalError") || text.contains("500"), "\(text)")
            #expect(!text.contains(c.sim.token("admin")), "no token in the log: \(text)")
        }
        // The API server back: the next event goes through.
        try await c.sim.setFaults(fraction: 0, kinds: [])
        await sink.post(Self.event(4, .promoted, "done"), deployment: "checkout", namespace: "shop")
        #expect(sink.counts.mirrored == 1)
    }
}
