import Foundation
import SluiceCore
import SluiceHTTP
import SluiceKubernetes
import SluiceTestSupport

/// A simulator plus a `KubernetesClient` configured from the kubeconfig it wrote (HTTPS, CA file, token).
struct SimCluster {
    let sim: KubeSimulator
    let client: KubernetesClient
    let kubeconfig: String

    init(
        context: String = "admin", objects: [[String: Any]] = [], availableAfter: Duration = .milliseconds(200),
        options: KubernetesClient.Options = .init(requestTimeout: .seconds(5)), http: (any HTTPClient)? = nil
    ) async throws {
        sim = try await KubeSimulator(availableAfter: availableAfter, objects: objects)
        kubeconfig = try sim.writeKubeconfig(current: context)
        let config = try ClusterConfig.fromKubeconfig(paths: [kubeconfig])
        client = KubernetesClient(config: config, http: try http ?? CurlClient(), options: options)
    }

    /// Another client of the same cluster with a different kubeconfig context (user).
    func client(context: String, options: KubernetesClient.Options = .init(requestTimeout: .seconds(5))) throws
        -> KubernetesClient
    {
        KubernetesClient(
            config: try ClusterConfig.fromKubeconfig(paths: [kubeconfig], context: context), http: try CurlClient(),
            options: options)
    }
}

/// An `HTTPClient` that runs `before` ahead of the first request matching `when`, then behaves as `base`.
final class InterferingHTTPClient: HTTPClient, @unchecked Sendable {
    let base: any HTTPClient
    let when: @Sendable (HTTPRequest) -> Bool
    let before: @Sendable () async throws -> Void
    private let lock = NSLock()
    private var done = false

    init(
        base: any HTTPClient, when: @escaping @Sendable (HTTPRequest) -> Bool,
        before: @escaping @Sendable () async throws -> Void
    ) {
        self.base = base
        self.when = when
        self.before = before
    }

    func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        let first =
            when(request)
            && lock.withLock { () -> Bool in
                defer { done = true }
                return !done
            }
        if first { try await before() }
        return try await base.execute(request)
    }
}
