import SluiceCore
import SluiceKubernetes

/// Splits traffic with ingress-nginx canary Ingresses: a managed `<ingress>-canary` Ingress, copied
/// from the main one and pointed at `canaryService`, with `nginx.ingress.kubernetes.io/canary: "true"`
/// and `canary-weight`. It is created at the first non-zero weight, updated (conditional on its
/// `resourceVersion`) at every change, and deleted by `finalize` after promotion or rollback.
public struct NGINXIngressRouter: TrafficRouter {
    public let ingress: String
    public let canaryService: String
    let ingresses: ResourceClient<Ingress>

    /// A router for the Ingress `ingress` in the namespace of `ingresses`.
    public init(ingress: String, canaryService: String, ingresses: ResourceClient<Ingress>) throws {
        let name = "nginxIngress ingress \(ingresses.namespace)/\(ingress)"
        guard !ingress.isEmpty, !canaryService.isEmpty else {
            throw ProviderError(.invalidConfiguration, provider: name, "ingress and canaryService must not be empty")
        }
        self.ingress = ingress
        self.canaryService = canaryService
        self.ingresses = ingresses
    }

    /// The name of the canary Ingress Sluice manages.
    public var canaryIngress: String { ingress + "-canary" }
    var name: String { "nginxIngress ingress \(ingresses.namespace)/\(ingress)" }

    public func setCanaryWeight(_ weight: Int) async throws {
        try TrafficSplit.validate(weight, router: name)
        let main = try await ProviderError.translating(provider: name) { try await ingresses.get(ingress) }
        if try await currentCanary() == nil {
            // No canary Ingress and no canary traffic wanted: nothing to create yet.
            guard weight > 0 else { return }
            let canary = try CanaryIngress.make(
                from: main, existing: nil, name: canaryIngress, canaryService: canaryService, weight: weight)
            do {
                _ = try await ingresses.create(canary)
                return
            } catch let error as KubernetesError where error.reason == "AlreadyExists" {
                // Created since we looked (an earlier attempt, another replica): update it below.
            } catch let error as KubernetesError {
                throw ProviderError(kubernetes: error, provider: name)
            }
        }
        try await ProviderError.translating(provider: name) {
            try await ingresses.update(canaryIngress) { canary in
                canary = try CanaryIngress.make(
                    from: main, existing: canary, name: canaryIngress, canaryService: canaryService, weight: weight)
            }
        }
    }

    public func canaryWeight() async throws -> Int {
        guard let canary = try await currentCanary() else { return 0 }
        guard let percent = CanaryIngress.percent(of: canary) else {
            throw ProviderError(
                .badResponse, provider: name,
                "Ingress '\(canaryIngress)' has a canary weight annotation that is not a whole number")
        }
        return percent
    }

    /// Deletes the canary Ingress (traffic is back on stable, or stable now runs the new version).
    public func finalize() async throws {
        do {
            try await ingresses.delete(canaryIngress)
        } catch let error as KubernetesError where error.code == .notFound {
            return
        } catch let error as KubernetesError {
            throw ProviderError(kubernetes: error, provider: name)
        }
    }

    /// The canary Ingress, or nil when there is none.
    func currentCanary() async throws -> Ingress? {
        do {
            return try await ingresses.get(canaryIngress)
        } catch let error as KubernetesError where error.code == .notFound {
            return nil
        } catch let error as KubernetesError {
            throw ProviderError(kubernetes: error, provider: name)
        }
    }
}

extension NGINXIngressRouter {
    /// The router of a strategy's `traffic.nginxIngress`, in the strategy's namespace of the configured cluster.
    init(ingress: String, canaryService: String, context: RouterContext) throws {
        let cluster = try context.kubernetes(for: .nginxIngress)
        try self.init(ingress: ingress, canaryService: canaryService, ingresses: cluster.ingresses(context.namespace))
    }
}
