import Foundation
import SluiceCore
import SluiceHTTP

/// Every metric provider Sluice has, one line each, keyed by the strategy's `ProviderConfig` case: a case without its
/// line does not compile, and each line is handed exactly its own case's settings. Every provider made here shares one
/// `HTTPClient` and one `ProviderMetrics`.
public struct MetricProviderRegistry: Sendable {
    public let client: any HTTPClient
    public let metrics: ProviderMetrics
    let environment: [String: String]
    let files = HeaderFiles()

    /// A registry whose providers' `fromEnv` header values come from `environment`, and whose `fromFile` files are
    /// re-read only when they change, though providers are built every tick.
    public init(
        client: any HTTPClient, metrics: ProviderMetrics = .init(),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.client = client
        self.metrics = metrics
        self.environment = environment
    }

    /// The provider for one `analysis.providers` entry.
    public func makeProvider(name: String, config: ProviderConfig) throws -> any MetricProvider {
        switch config {
        case .prometheus(let settings):
            try PrometheusProvider(
                name: name, config: settings, client: client, metrics: metrics, environment: environment,
                headerFiles: files)
        case .web(let settings):
            try WebProvider(
                name: name, config: settings, client: client, metrics: metrics, environment: environment,
                headerFiles: files)
        }
    }

    /// A provider for every entry of `analysis.providers`, by key.
    public func makeProviders(for analysis: Analysis) throws -> [String: any MetricProvider] {
        try analysis.providers.reduce(into: [:]) { providers, entry in
            providers[entry.key] = try makeProvider(name: entry.key, config: entry.value)
        }
    }
}
