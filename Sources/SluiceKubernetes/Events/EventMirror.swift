import Foundation
import SluiceCore

/// Mirrors Sluice events of a Deployment-target rollout as core v1 Events on the stable Deployment, so
/// `kubectl get events` and `kubectl describe deployment` show the rollout. Called after the event is committed.
/// Each event gets a name derived from its `seq`, so posting the same event twice (a replay) creates one Event.
public struct EventMirror: Sendable {
    public let client: KubernetesClient
    /// `source.component` and `reportingComponent`.
    public let component: String
    /// `reportingInstance`: which Sluice replica reported it.
    public let instance: String
    private let uids = Locked<[String: String]>([:])

    public init(
        client: KubernetesClient, component: String = "sluice", instance: String = ProcessInfo.processInfo.hostName
    ) {
        self.client = client
        self.component = component
        self.instance = instance
    }

    /// Event types that are shown as `Warning`; all others are `Normal`.
    public static let warningTypes: Set<EventType> = [
        .checkBreached, .checkNoData, .providerError, .rollbackStarted, .rolledBack, .failed, .driftDetected,
        .effectFailed, .superseded,
    ]

    /// Posts `event` as an Event about Deployment `deployment` in `namespace`; returns what the server stored,
    /// or nil when that Event was already there (a replay). Its calls: `get` of the Deployment (for its uid, once
    /// per rollout) and `create` of the Event; nothing else, so the RBAC in manifests/ grants events `create` only.
    @discardableResult
    public func mirror(
        _ event: SluiceCore.Event, deployment: String, namespace: String
    ) async throws -> KubernetesEvent? {
        let object = try await kubernetesEvent(for: event, deployment: deployment, namespace: namespace)
        do {
            return try await client.events(namespace).create(object)
        } catch let error as KubernetesError where error.reason == "AlreadyExists" {
            return nil
        }
    }

    /// The Event that stands for `event` (without posting it).
    public func kubernetesEvent(
        for event: SluiceCore.Event, deployment: String, namespace: String
    ) async throws -> KubernetesEvent {
        let uid = try await uid(of: deployment, in: namespace, rollout: event.rollout)
        var meta = ObjectMeta(namespace: namespace, labels: ["sluice.dev/rollout": Self.labelValue(event.rollout)])
        if event.seq > 0 {
            meta.name = "\(deployment).sluice-\(event.seq)"
        } else {
            meta.generateName = "\(deployment).sluice-"
        }
        var message = "[\(event.rollout)] " + event.message
        if let reason = event.reason, !reason.isEmpty { message += " (\(reason))" }
        if message.count > 1024 { message = String(message.prefix(1021)) + "..." }
        let time = Self.kubernetesTime(event.time)
        return KubernetesEvent(
            metadata: meta,
            involvedObject: ObjectReference(
                apiVersion: Deployment.resource.apiVersion, kind: Deployment.resource.kind, name: deployment,
                namespace: namespace, uid: uid),
            reason: event.type.rawValue, message: message,
            type: Self.warningTypes.contains(event.type) ? "Warning" : "Normal",
            source: EventSource(component: component), firstTimestamp: time, lastTimestamp: time, count: 1,
            reportingComponent: "sluice.dev/\(component)", reportingInstance: instance, action: event.type.rawValue)
    }

    /// The Deployment's uid, read once per rollout: a Deployment deleted and created again between two rollouts
    /// gets its new uid, which `kubectl describe` looks Events up by.
    private func uid(of deployment: String, in namespace: String, rollout: String) async throws -> String? {
        let key = namespace + "/" + deployment + "/" + rollout
        if let known = uids.withLock({ $0[key] }) { return known }
        let uid = try await client.deployments(namespace).get(deployment).metadata.uid
        uids.withLock {
            if $0.count >= 1024 { $0.removeAll(keepingCapacity: true) }
            $0[key] = uid
        }
        return uid
    }

    /// `metav1.Time`: RFC 3339 in whole seconds.
    static func kubernetesTime(_ time: Timestamp) -> String {
        let text = time.rfc3339
        guard let dot = text.lastIndex(of: ".") else { return text }
        return String(text[..<dot]) + "Z"
    }

    /// A label value (63 characters of `[A-Za-z0-9._-]`, alphanumeric at both ends).
    static func labelValue(_ text: String) -> String {
        let allowed = text.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "-" }
        var value = String(allowed.prefix(63))
        while let last = value.last, !(last.isLetter || last.isNumber) { value.removeLast() }
        while let first = value.first, !(first.isLetter || first.isNumber) { value.removeFirst() }
        return value
    }
}
