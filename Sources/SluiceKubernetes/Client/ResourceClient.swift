import SluiceCore

/// Objects of one typed resource in one namespace: `client.deployments("shop").get("checkout")`.
public struct ResourceClient<T: KubernetesResource>: Sendable {
    public let client: KubernetesClient
    public let namespace: String

    /// The object `name`; `KubernetesError` with code `notFound` when there is none.
    public func get(_ name: String) async throws -> T {
        try await client.get(T.self, namespace: namespace, name: name)
    }

    /// The objects matching the selectors (`app=web,tier!=db`; `involvedObject.name=x`).
    public func list(labelSelector: String? = nil, fieldSelector: String? = nil) async throws -> [T] {
        try await client.list(T.self, namespace: namespace, labelSelector: labelSelector, fieldSelector: fieldSelector)
            .items
    }

    /// Creates `object` in this namespace and returns it as stored.
    public func create(_ object: T) async throws -> T {
        try await client.create(object, namespace: namespace)
    }

    /// Applies an RFC 7386 merge patch; with `resourceVersion` the write happens only if nobody wrote since
    /// (otherwise `conflict`).
    public func patch(_ name: String, mergePatch: JSONValue, resourceVersion: String? = nil) async throws -> T {
        try await client.patch(
            T.self, namespace: namespace, name: name, mergePatch: mergePatch, resourceVersion: resourceVersion)
    }

    /// Reads `name`, applies `change`, and writes back only what changed (a merge patch with a
    /// `resourceVersion` precondition), re-reading and retrying on conflicts a bounded number of times.
    @discardableResult
    public func update(_ name: String, _ change: (inout T) throws -> Void) async throws -> T {
        try await client.update(T.self, namespace: namespace, name: name, change)
    }

    /// Deletes `name`; `notFound` when it does not exist.
    public func delete(_ name: String) async throws {
        try await client.delete(T.self, namespace: namespace, name: name)
    }
}
