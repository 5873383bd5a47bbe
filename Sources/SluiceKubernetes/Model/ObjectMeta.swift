import SluiceCore

/// A Kubernetes API resource type: where it lives on the server and what it is called.
public struct ResourceType: Sendable, Hashable, CustomStringConvertible {
    /// The API group; empty for the core group.
    public var group: String
    public var version: String
    /// The lower-case plural used in URLs (`deployments`).
    public var plural: String
    public var kind: String

    public init(group: String, version: String, plural: String, kind: String) {
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
    }

    /// `apps/v1`, or `v1` for the core group.
    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }

    /// `deployments.apps`, or `services` for the core group, as kubectl and the server's messages name it.
    public var description: String { group.isEmpty ? plural : "\(plural).\(group)" }

    /// The URL path of the collection in `namespace`, or of the object `name` in it.
    public func path(namespace: String, name: String? = nil) -> String {
        let prefix = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
        let collection = "\(prefix)/namespaces/\(Self.escape(namespace))/\(plural)"
        return name.map { collection + "/" + Self.escape($0) } ?? collection
    }

    private static func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~")))
            ?? segment
    }
}

/// A namespaced object of one of the typed resources (Deployment, Service, HTTPRoute, Ingress, Event, Lease).
public protocol KubernetesResource: Codable, Sendable, Hashable {
    /// Where objects of this type live on the API server.
    static var resource: ResourceType { get }
    var metadata: ObjectMeta { get set }
}

/// `metadata` of an object. Fields Sluice does not model (ownerReferences, finalizers...) are kept in `additional`.
public struct ObjectMeta: Codable, Sendable, Hashable {
    public var name: String?
    public var generateName: String?
    public var namespace: String?
    public var uid: String?
    /// An opaque string; sent back in a patch it makes the write conditional on nobody having written since.
    public var resourceVersion: String?
    public var generation: Int?
    public var creationTimestamp: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var additional: [String: JSONValue]

    public init(
        name: String? = nil, generateName: String? = nil, namespace: String? = nil, labels: [String: String]? = nil,
        annotations: [String: String]? = nil
    ) {
        self.name = name
        self.generateName = generateName
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
        additional = [:]
    }

    private static let fields: Set<String> = [
        "name", "generateName", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "labels",
        "annotations",
    ]

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        name = try c.optional("name")
        generateName = try c.optional("generateName")
        namespace = try c.optional("namespace")
        uid = try c.optional("uid")
        resourceVersion = try c.optional("resourceVersion")
        generation = try c.optional("generation")
        creationTimestamp = try c.optional("creationTimestamp")
        labels = try c.optional("labels")
        annotations = try c.optional("annotations")
        additional = try c.unknown(except: Self.fields)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.put(name, "name")
        try c.put(generateName, "generateName")
        try c.put(namespace, "namespace")
        try c.put(uid, "uid")
        try c.put(resourceVersion, "resourceVersion")
        try c.put(generation, "generation")
        try c.put(creationTimestamp, "creationTimestamp")
        try c.put(labels, "labels")
        try c.put(annotations, "annotations")
        try c.put(unknown: additional)
    }
}

/// A list answered by the server, with the collection's resourceVersion.
public struct ObjectList<Item: KubernetesResource>: Decodable, Sendable {
    public struct Meta: Decodable, Sendable {
        public var resourceVersion: String?
    }
    public var metadata: Meta
    public var items: [Item]
}

/// `status.conditions[]` of a Deployment (and most other kinds).
public struct Condition: Codable, Sendable, Hashable {
    public var type: String
    /// `True`, `False` or `Unknown`.
    public var status: String
    public var reason: String?
    public var message: String?
    public var lastUpdateTime: String?
    public var lastTransitionTime: String?
}

/// A label selector: `matchLabels` and `matchExpressions` (kept as JSON).
public struct LabelSelector: Codable, Sendable, Hashable {
    public var matchLabels: [String: String]?
    public var matchExpressions: [JSONValue]?

    public init(matchLabels: [String: String]? = nil, matchExpressions: [JSONValue]? = nil) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    /// The selector in the query form of `labelSelector=` (`a=b,c=d`), sorted; nil with match expressions.
    public var queryString: String? {
        guard matchExpressions?.isEmpty ?? true else { return nil }
        return (matchLabels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}
