import SluiceCore

/// A v1 Service: its selector and ports; the rest of its spec and its status are kept as JSON.
public struct Service: KubernetesResource {
    public static let resource = ResourceType(group: "", version: "v1", plural: "services", kind: "Service")
    public var metadata: ObjectMeta
    public var spec: ServiceSpec
    public var status: JSONValue?

    public init(metadata: ObjectMeta, spec: ServiceSpec) {
        self.metadata = metadata
        self.spec = spec
    }
}

/// `spec` of a Service.
public struct ServiceSpec: Codable, Sendable, Hashable {
    public var selector: [String: String]?
    public var ports: [ServicePort]?
    public var type: String?
    /// `clusterIP`, `sessionAffinity`...
    public var additional: [String: JSONValue]

    public init(selector: [String: String]? = nil, ports: [ServicePort]? = nil, type: String? = nil) {
        self.selector = selector
        self.ports = ports
        self.type = type
        additional = [:]
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        selector = try c.optional("selector")
        ports = try c.optional("ports")
        type = try c.optional("type")
        additional = try c.unknown(except: ["selector", "ports", "type"])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.put(selector, "selector")
        try c.put(ports, "ports")
        try c.put(type, "type")
        try c.put(unknown: additional)
    }
}

/// One port of a Service; `targetPort` is a number or a name, so it stays JSON.
public struct ServicePort: Codable, Sendable, Hashable {
    public var name: String?
    public var port: Int
    public var targetPort: JSONValue?
    public var `protocol`: String?

    public init(name: String? = nil, port: Int, targetPort: JSONValue? = nil, protocol: String? = nil) {
        self.name = name
        self.port = port
        self.targetPort = targetPort
        self.protocol = `protocol`
    }
}
