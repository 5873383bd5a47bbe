import Foundation
import SluiceCore
import SluiceHTTP

/// Answers checks from any JSON endpoint: GET `url`, the number at the dotted `jsonPath`
/// (`data.items.0.value`). A null, a missing list element, NaN or ±Inf is no data; a path that does
/// not lead to a number is a `ProviderError` naming where it went wrong.
public struct WebProvider: MetricReader {
    public let name: String
    public let config: WebConfig
    private let endpoint: MetricEndpoint
    private let metrics: ProviderMetrics

    /// `name` is the provider's key in `analysis.providers`; `metrics` records every query. Header values
    /// `fromEnv` are read from `environment` and `fromFile` from their files (kept in `headerFiles`) now: a
    /// missing one throws.
    public init(
        name: String, config: WebConfig, client: any HTTPClient, metrics: ProviderMetrics = .init(),
        environment: [String: String] = ProcessInfo.processInfo.environment, headerFiles: HeaderFiles = HeaderFiles()
    ) throws {
        self.name = name
        self.config = config
        self.metrics = metrics
        let provider = MetricEndpoint.describe(kind: "web", name: name, url: config.url)
        self.endpoint = MetricEndpoint(
            provider: provider, client: client, timeout: config.timeout,
            headers: try ProviderHeaders(
                config.headers, environment: environment, files: headerFiles, provider: provider))
    }

    /// The web provider has no query language: `query` is rendered into `url` where the URL holds
    /// `{{query}}` (e.g. `https://stats.example.com/q?expr={{query}}`), and is otherwise unused.
    public func read(query: String) async throws -> MetricReading {
        try await metrics.measure(provider: name) {
            let url = config.url.replacingOccurrences(of: "{{query}}", with: percentEncoded(query))
            let response = try await endpoint.get(url)
            guard (200..<300).contains(response.status) else { throw endpoint.failure(response) }
            let document: JSONValue
            do {
                document = try JSONDecoder().decode(JSONValue.self, from: response.body)
            } catch {
                throw endpoint.badResponse("not JSON: \(snippet(response.body))")
            }
            return try Self.reading(at: config.jsonPath, in: document, endpoint: endpoint)
        }
    }

    /// The number at dotted `path` in `document`. Pure, so every shape is tested without a server.
    static func reading(at path: String, in document: JSONValue, endpoint: MetricEndpoint) throws -> MetricReading {
        var node = document
        var walked = "$"
        for component in path.split(separator: ".", omittingEmptySubsequences: false).map(String.init) {
            switch node {
            case .object(let fields):
                guard let next = fields[component] else {
                    let keys = fields.keys.sorted().prefix(10).joined(separator: ", ")
                    throw endpoint.badResponse("\(path): no key \"\(component)\" at \(walked) (keys: \(keys))")
                }
                node = next
            case .array(let elements):
                guard let index = Int(component), index >= 0 else {
                    throw endpoint.badResponse("\(path): \(walked) is a list, \"\(component)\" is not an index")
                }
                guard index < elements.count else {
                    return .noData(reason: "\(walked) has \(elements.count) elements, no element \(index)")
                }
                node = elements[index]
            case .null:
                return .noData(reason: "\(walked) is null")
            default:
                throw endpoint.badResponse("\(path): \(walked) is \(kind(of: node)), not an object or a list")
            }
            walked += "." + component
        }
        switch node {
        case .number(let number):
            return MetricReading(number: number)
        case .string(let text):
            guard let reading = MetricReading(numberText: text) else {
                throw endpoint.badResponse("\(path): \"\(text)\" is not a number")
            }
            return reading
        case .null:
            return .noData(reason: "\(path) is null")
        default:
            throw endpoint.badResponse("\(path): \(kind(of: node)), not a number")
        }
    }

    /// The kind of `value` with its article, for messages.
    private static func kind(of value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "a list"
        case .object: "an object"
        }
    }
}
