/// A coordination.k8s.io/v1 Lease, for leader election among Sluice replicas.
public struct Lease: KubernetesResource {
    public static let resource = ResourceType(
        group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease")
    public var metadata: ObjectMeta
    public var spec: LeaseSpec

    public init(metadata: ObjectMeta, spec: LeaseSpec = .init()) {
        self.metadata = metadata
        self.spec = spec
    }
}

/// `spec` of a Lease. Times are RFC 3339 with microseconds (`MicroTime`).
public struct LeaseSpec: Codable, Sendable, Hashable {
    public var holderIdentity: String?
    public var leaseDurationSeconds: Int?
    public var acquireTime: String?
    public var renewTime: String?
    public var leaseTransitions: Int?

    public init(
        holderIdentity: String? = nil, leaseDurationSeconds: Int? = nil, acquireTime: String? = nil,
        renewTime: String? = nil, leaseTransitions: Int? = nil
    ) {
        self.holderIdentity = holderIdentity
        self.leaseDurationSeconds = leaseDurationSeconds
        self.acquireTime = acquireTime
        self.renewTime = renewTime
        self.leaseTransitions = leaseTransitions
    }
}
