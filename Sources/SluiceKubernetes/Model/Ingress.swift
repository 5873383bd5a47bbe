import SluiceCore

/// A networking.k8s.io/v1 Ingress: class, rules and backends; TLS and the rest are kept.
public struct Ingress: KubernetesResource {
    public static let resource = ResourceType(
        group: "networking.k8s.io", version: "v1", plural: "ingresses", kind: "Ingress")
    public var metadata: ObjectMeta
    public var spec: IngressSpec
    public var status: JSONValue?

    public init(metadata: ObjectMeta, spec: IngressSpec) {
        self.metadata = metadata
        self.spec = spec
    }
}

/// `spec` of an Ingress.
public struct IngressSpec: Codable, Sendable, Hashable {
    public var ingressClassName: String?
    public var defaultBackend: IngressBackend?
    public var rules: [IngressRule]?
    public var tls: [JSONValue]?

    public init(
        ingressClassName: String? = nil, defaultBackend: IngressBackend? = nil, rules: [IngressRule]? = nil,
        tls: [JSONValue]? = nil
    ) {
        self.ingressClassName = ingressClassName
        self.defaultBackend = defaultBackend
        self.rules = rules
        self.tls = tls
    }
}

/// One host's rule.
public struct IngressRule: Codable, Sendable, Hashable {
    public var host: String?
    public var http: HTTPIngressRuleValue?
    public init(host: String? = nil, http: HTTPIngressRuleValue? = nil) {
        self.host = host
        self.http = http
    }
}

/// The paths of a rule.
public struct HTTPIngressRuleValue: Codable, Sendable, Hashable {
    public var paths: [HTTPIngressPath]
    public init(paths: [HTTPIngressPath]) { self.paths = paths }
}

/// One path and where it goes.
public struct HTTPIngressPath: Codable, Sendable, Hashable {
    public var path: String?
    /// `Prefix`, `Exact` or `ImplementationSpecific`.
    public var pathType: String
    public var backend: IngressBackend
    public init(path: String? = nil, pathType: String = "Prefix", backend: IngressBackend) {
        self.path = path
        self.pathType = pathType
        self.backend = backend
    }
}

/// A backend: a Service and port, or another resource (kept as JSON).
public struct IngressBackend: Codable, Sendable, Hashable {
    public var service: IngressServiceBackend?
    public var resource: JSONValue?
    public init(service: IngressServiceBackend? = nil) { self.service = service }
}

/// A Service backend of an Ingress.
public struct IngressServiceBackend: Codable, Sendable, Hashable {
    public var name: String
    public var port: ServiceBackendPort
    public init(name: String, port: ServiceBackendPort) {
        self.name = name
        self.port = port
    }
}

/// A Service port by number or by name.
public struct ServiceBackendPort: Codable, Sendable, Hashable {
    public var number: Int?
    public var name: String?
    public init(number: Int? = nil, name: String? = nil) {
        self.number = number
        self.name = name
    }
}
