import SluiceKubernetes

extension ProviderError {
    /// The router-level error for a Kubernetes failure: same cause, same retryability.
    init(kubernetes error: KubernetesError, provider: String) {
        let code: Code =
            switch error.code {
            case .conflict where error.reason != "AlreadyExists": .conflict
            case .tooManyRequests, .server, .transport, .unavailable: .unavailable
            case .configuration: .invalidConfiguration
            default: .rejected
            }
        self.init(code, provider: provider, error.description, status: error.status)
    }

    /// Runs a Kubernetes call, turning its `KubernetesError` into a `ProviderError` naming `provider`.
    static func translating<T>(provider: String, _ call: () async throws -> T) async throws -> T {
        do {
            return try await call()
        } catch let error as KubernetesError {
            throw ProviderError(kubernetes: error, provider: provider)
        }
    }
}
