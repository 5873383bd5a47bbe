import SluiceCore

/// An apps/v1 Deployment: the parts Sluice reads and writes; everything else is kept as it was.
public struct Deployment: KubernetesResource {
    public static let resource = ResourceType(group: "apps", version: "v1", plural: "deployments", kind: "Deployment")
    public var metadata: ObjectMeta
    public var spec: DeploymentSpec
    public var status: DeploymentStatus?

    public init(metadata: ObjectMeta, spec: DeploymentSpec) {
        self.metadata = metadata
        self.spec = spec
    }
}

/// `spec` of a Deployment.
public struct DeploymentSpec: Codable, Sendable, Hashable {
    /// nil means the server's default, 1.
    public var replicas: Int?
    public var selector: LabelSelector
    public var template: PodTemplateSpec
    public var progressDeadlineSeconds: Int?
    public var minReadySeconds: Int?
    /// `strategy`, `revisionHistoryLimit`, `paused`...
    public var additional: [String: JSONValue]

    public init(replicas: Int? = nil, selector: LabelSelector, template: PodTemplateSpec) {
        self.replicas = replicas
        self.selector = selector
        self.template = template
        additional = [:]
    }

    private static let fields: Set<String> = [
        "replicas", "selector", "template", "progressDeadlineSeconds", "minReadySeconds",
    ]

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        replicas = try c.optional("replicas")
        selector = try c.value("selector")
        template = try c.value("template")
        progressDeadlineSeconds = try c.optional("progressDeadlineSeconds")
        minReadySeconds = try c.optional("minReadySeconds")
        additional = try c.unknown(except: Self.fields)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.put(replicas, "replicas")
        try c.put(selector, "selector")
        try c.put(template, "template")
        try c.put(progressDeadlineSeconds, "progressDeadlineSeconds")
        try c.put(minReadySeconds, "minReadySeconds")
        try c.put(unknown: additional)
    }
}

/// A pod template: labels and annotations in `metadata`, containers in `spec`.
public struct PodTemplateSpec: Codable, Sendable, Hashable {
    public var metadata: ObjectMeta?
    public var spec: PodSpec

    public init(metadata: ObjectMeta? = nil, spec: PodSpec) {
        self.metadata = metadata
        self.spec = spec
    }
}

/// `spec` of a pod: the containers Sluice changes the image of; volumes, probes, etc. are kept.
public struct PodSpec: Codable, Sendable, Hashable {
    public var containers: [Container]
    public var additional: [String: JSONValue]

    public init(containers: [Container]) {
        self.containers = containers
        additional = [:]
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        containers = try c.value("containers")
        additional = try c.unknown(except: ["containers"])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.put(containers, "containers")
        try c.put(unknown: additional)
    }
}

/// One container: its name and image; ports, env, probes, resources are kept.
public struct Container: Codable, Sendable, Hashable {
    public var name: String
    public var image: String?
    public var additional: [String: JSONValue]

    public init(name: String, image: String?) {
        self.name = name
        self.image = image
        additional = [:]
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        name = try c.value("name")
        image = try c.optional("image")
        additional = try c.unknown(except: ["name", "image"])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.put(name, "name")
        try c.put(image, "image")
        try c.put(unknown: additional)
    }
}

/// `status` of a Deployment, as the Deployment controller writes it.
public struct DeploymentStatus: Codable, Sendable, Hashable {
    public var observedGeneration: Int?
    public var replicas: Int?
    public var updatedReplicas: Int?
    public var readyReplicas: Int?
    public var availableReplicas: Int?
    public var unavailableReplicas: Int?
    public var conditions: [Condition]?

    /// The condition of `type` (`Available`, `Progressing`), if the controller reported it.
    public func condition(_ type: String) -> Condition? { conditions?.first { $0.type == type } }
}

extension Deployment {
    /// `spec.replicas` with the server's default.
    public var desiredReplicas: Int { spec.replicas ?? 1 }

    /// The Deployment controller has seen the latest spec and every wanted pod runs it and is available
    /// (the test `kubectl rollout status` makes).
    public var isRolledOut: Bool {
        guard let status, let generation = metadata.generation else { return false }
        return (status.observedGeneration ?? 0) >= generation
            && (status.updatedReplicas ?? 0) >= desiredReplicas
            && (status.availableReplicas ?? 0) >= desiredReplicas
            && (status.replicas ?? 0) <= desiredReplicas
    }
}
