import SluiceCore

/// A gateway.networking.k8s.io/v1 HTTPRoute: its rules' backend references and weights. Matches, filters and
/// anything else in a rule are kept, so a merge patch of `spec.rules` sends every rule back complete.
public struct HTTPRoute: KubernetesResource {
    public static let resource = ResourceType(
        group: "gateway.networking.k8s.io", version: "v1", plural: "httproutes", kind: "HTTPRoute")
    public var metadata: ObjectMeta
    public var spec: HTTPRouteSpec
    public var status: JSONValue?

    public init(metadata: ObjectMeta, spec: HTTPRouteSpec) {
        self.metadata = metadata
        self.spec = spec
    }
}

/// `spec` of an HTTPRoute.
public struct HTTPRouteSpec: Codable, Sendable, Hashable {
    public var parentRefs: [JSONValue]?
    public var hostnames: [String]?
    public var rules: [HTTPRouteRule]?

    public init(parentRefs: [JSONValue]? = nil, hostnames: [String]? = nil, rules: [HTTPRouteRule]? = nil) {
        self.parentRefs = parentRefs
        self.hostnames = hostnames
        self.rules = rules
    }
}

/// One rule of an HTTPRoute.
public struct HTTPRouteRule: Codable, Sendable, Hashable {
    public var backendRefs: [HTTPBackendRef]?
    /// `matches`, `filters`, `timeouts`, `name`...
    public var additional: [String: JSONValue]

    public init(backendRefs: [HTTPBackendRef]? = nil, additional: [String: JSONValue] = [:]) {
        self.backendRefs = backendRefs
        self.additional = additional
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        backendRefs = try c.optional("backendRefs")
        additional = try c.unknown(except: ["backendRefs"])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.put(backendRefs, "backendRefs")
        try c.put(unknown: additional)
    }
}

/// A backend of an HTTPRoute rule: a Service (by default) and its weight.
public struct HTTPBackendRef: Codable, Sendable, Hashable {
    public var group: String?
    public var kind: String?
    public var name: String
    public var namespace: String?
    public var port: Int?
    /// Relative weight; the API's default is 1.
    public var weight: Int?
    /// `filters`...
    public var additional: [String: JSONValue]

    public init(name: String, port: Int? = nil, weight: Int? = nil) {
        self.name = name
        self.port = port
        self.weight = weight
        additional = [:]
    }

    private static let fields: Set<String> = ["group", "kind", "name", "namespace", "port", "weight"]

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        group = try c.optional("group")
        kind = try c.optional("kind")
        name = try c.value("name")
        namespace = try c.optional("namespace")
        port = try c.optional("port")
        weight = try c.optional("weight")
        additional = try c.unknown(except: Self.fields)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.put(group, "group")
        try c.put(kind, "kind")
        try c.put(name, "name")
        try c.put(namespace, "namespace")
        try c.put(port, "port")
        try c.put(weight, "weight")
        try c.put(unknown: additional)
    }
}
