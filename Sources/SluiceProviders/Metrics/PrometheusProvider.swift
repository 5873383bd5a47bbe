import Foundation
import SluiceCore
import SluiceHTTP

/// Answers checks with Prometheus instant queries (`GET /api/v1/query`). A scalar or a one-element
/// vector is the value; an empty vector, NaN or ±Inf is no data; more series than one, a range
/// vector, or Prometheus rejecting the query (400 `bad_data`, 422 `execution`) is a `ProviderError`
/// carrying Prometheus' own words, which the controller records and counts as no data.
public struct PrometheusProvider: MetricReader {
    public let name: String
    public let config: PrometheusConfig
    private let endpoint: MetricEndpoint
    private let metrics: ProviderMetrics

    /// `name` is the provider's key in `analysis.providers`; `metrics` records every query.
    public init(name: String, config: PrometheusConfig, client: any HTTPClient, metrics: ProviderMetrics = .init()) {
        self.name = name
        self.config = config
        self.metrics = metrics
        self.endpoint = MetricEndpoint(
            kind: "prometheus", name: name, url: config.address, client: client, timeout: config.timeout,
            headers: config.headers)
    }

    public func read(query: String) async throws -> MetricReading {
        try await metrics.measure(provider: name) {
            let response = try await endpoint.get(queryURL(query), auth: try bearerToken().map { .bearer($0) })
            return try Self.reading(from: response, endpoint: endpoint)
        }
    }

    /// `address` + `/api/v1/query?query=…`, keeping any path prefix of the address.
    func queryURL(_ query: String) -> String {
        var base = config.address
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/api/v1/query?query=" + percentEncoded(query)
    }

    /// The token in `bearerTokenFile`, read at every query so a rotated token is used at once.
    private func bearerToken() throws -> String? {
        guard let path = config.bearerTokenFile else { return nil }
        let files = FileManager.default
        guard let data = files.contents(atPath: path) else {
            let why = !files.fileExists(atPath: path) ? "no such file" : "permission denied or not a regular file"
            throw ProviderError(
                .invalidConfiguration, provider: endpoint.provider, "cannot read bearerTokenFile \(path): \(why)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else {
            throw ProviderError(.invalidConfiguration, provider: endpoint.provider, "bearerTokenFile \(path) is empty")
        }
        return token
    }
}

extension PrometheusProvider {
    /// The body of an instant query answer (`/api/v1/query`).
    struct Answer: Decodable {
        struct Payload: Decodable {
            var resultType: String
            var result: JSONValue
        }
        var status: String
        var data: Payload?
        var errorType: String?
        var error: String?
    }

    /// What an answer of Prometheus means for a check. Pure, so every shape is tested without a server.
    static func reading(from response: HTTPResponse, endpoint: MetricEndpoint) throws -> MetricReading {
        let answer = try? JSONDecoder().decode(Answer.self, from: response.body)
        if let answer, answer.status == "error" || !(200..<300).contains(response.status) {
            let kind = answer.errorType ?? "error"
            throw endpoint.failure(response, "\(kind): \(answer.error ?? "no message")")
        }
        guard (200..<300).contains(response.status) else { throw endpoint.failure(response) }
        guard let answer, answer.status == "success", let data = answer.data else {
            throw endpoint.badResponse("not a Prometheus query answer: \(snippet(response.body))")
        }
        switch data.resultType {
        case "scalar":
            return try sampleReading(data.result, endpoint: endpoint)
        case "vector":
            guard case .array(let series) = data.result else {
                throw endpoint.badResponse("a vector result that is not a list")
            }
            if series.isEmpty { return .noData(reason: "the query returned an empty result (no such series?)") }
            guard series.count == 1 else {
                throw endpoint.badResponse(
                    "the query must return one value but returned \(series.count) series "
                        + "(\(labelSets(series))); aggregate them, e.g. with sum(...)")
            }
            guard case .object(let element) = series[0], let value = element["value"] else {
                throw endpoint.badResponse("a vector element without a value")
            }
            return try sampleReading(value, endpoint: endpoint)
        case "matrix":
            throw endpoint.badResponse(
                "the query must return one value but returned a range vector; "
                    + "wrap the [window] selector in a function such as rate(...) or avg_over_time(...)")
        default:
            throw endpoint.badResponse("the query must return a number but returned a \(data.resultType)")
        }
    }

    /// `[timestamp, "value"]`.
    private static func sampleReading(_ sample: JSONValue, endpoint: MetricEndpoint) throws -> MetricReading {
        guard case .array(let pair) = sample, pair.count == 2, case .string(let text) = pair[1],
            let reading = MetricReading(numberText: text)
        else {
            throw endpoint.badResponse("a sample that is not [time, \"number\"]")
        }
        return reading
    }

    /// The label sets of the first few series, to show which labels the query forgot to aggregate.
    private static func labelSets(_ series: [JSONValue]) -> String {
        let shown = series.prefix(3).map { element -> String in
            guard case .object(let fields) = element, case .object(let metric)? = fields["metric"] else { return "{}" }
            let labels = metric.sorted { $0.key < $1.key }.map { key, value -> String in
                if case .string(let text) = value { return "\(key)=\"\(text)\"" }
                return key
            }
            return "{" + labels.joined(separator: ",") + "}"
        }
        return shown.joined(separator: ", ") + (series.count > 3 ? ", …" : "")
    }
}

/// `text` percent-encoded for a URL query value: everything but RFC 3986's unreserved characters.
func percentEncoded(_ text: String) -> String {
    let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}
