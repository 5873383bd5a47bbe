import Foundation
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
        let posted = try await mirror.mirror(
            Self.event(7, type, "something happened"), deployment: "checkout", namespace: "shop")
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
        try await mirror.mirror(events[1], deployment: "checkout", namespace: "shop")  // a replay after a restart
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
}
