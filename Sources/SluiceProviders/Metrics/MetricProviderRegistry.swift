import Foundation
import SluiceCore
import SluiceHTTP

/// Maps the kind of a strategy's provider entry (`prometheus`, `web`) to a factory that makes its
/// `MetricProvider`. Every provider made here shares one `HTTPClient` and one `ProviderMetrics`.
public struct MetricProviderRegistry: Sendable {
    /// Makes the provider named `name` from its settings.
    public typealias Factory =
        @Sendable (_ name: String, _ config: ProviderConfig, _ client: any HTTPClient, _ metrics: ProviderMetrics)
        throws -> any MetricProvider

    public let client: any HTTPClient
    public let metrics: ProviderMetrics
    private var factories: [String: Factory] = [:]

    /// A registry that knows `prometheus` and `web`; their `fromEnv` header values come from `environment`, and
    /// their `fromFile` files are re-read only when they change, though providers are built every tick.
    public init(
        client: any HTTPClient, metrics: ProviderMetrics = .init(),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.client = client
        self.metrics = metrics
        let files = HeaderFiles()
        register("prometheus") { name, config, client, metrics in
            guard case .prometheus(let settings) = config else { throw mismatch(name, config, "prometheus") }
            return try PrometheusProvider(
                name: name, config: settings, client: client, metrics: metrics, environment: environment,
                headerFiles: files)
        }
        register("web") { name, config, client, metrics in
            guard case .web(let settings) = config else { throw mismatch(name, config, "web") }
            return try WebProvider(
                name: name, config: settings, client: client, metrics: metrics, environment: environment,
                headerFiles: files)
        }
    }

    /// Adds or replaces the factory for `kind`.
    public mutating func register(_ kind: String, _ factory: @escaping Factory) {
        factories[kind] = factory
    }

    /// The provider for one `analysis.providers` entry.
    public func makeProvider(name: String, config: ProviderConfig) throws -> any MetricProvider {
        guard let factory = factories[config.kind] else {
            throw ProviderError(
                .invalidConfiguration, provider: name,
                "no metric provider of kind \(config.kind) (known: \(factories.keys.sorted().joined(separator: ", ")))")
        }
        return try factory(name, config, client, metrics)
    }

    /// A provider for every entry of `analysis.providers`, by key.
    public func makeProviders(for analysis: Analysis) throws -> [String: any MetricProvider] {
        try analysis.providers.reduce(into: [:]) { providers, entry in
            providers[entry.key] = try makeProvider(name: entry.key, config: entry.value)
        }
    }
}

private func mismatch(_ name: String, _ config: ProviderConfig, _ expected: String) -> ProviderError {
    ProviderError(.invalidConfiguration, provider: name, "the \(expected) factory was given a \(config.kind) provider")
}
