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
    /// The time queries are evaluated at (`time=`), for `sluice replay`; nil asks for now, as a live tick does.
    public private(set) var evaluationTime: Timestamp?

    /// `name` is the provider's key in `analysis.providers`; `metrics` records every query. Header values
    /// `fromEnv` are read from `environment` and `fromFile` from their files (kept in `headerFiles`) now: a
    /// missing one throws.
    public init(
        name: String, config: PrometheusConfig, client: any HTTPClient, metrics: ProviderMetrics = .init(),
        environment: [String: String] = ProcessInfo.processInfo.environment, headerFiles: HeaderFiles = HeaderFiles()
    ) throws {
        self.name = name
        self.config = config
        self.metrics = metrics
        let provider = MetricEndpoint.describe(kind: "prometheus", name: name, url: config.address)
        self.endpoint = MetricEndpoint(
            provider: provider, client: client, timeout: config.timeout,
            headers: try ProviderHeaders(
                config.headers, environment: environment, files: headerFiles, provider: provider))
    }

    public func read(query: String) async throws -> MetricReading {
        try await metrics.measure(provider: name) {
            let response = try await endpoint.get(queryURL(query), auth: try bearerToken().map { .bearer($0) })
            return try Self.reading(from: response, endpoint: endpoint)
        }
    }

    /// This provider with its queries evaluated at `time`: exactly the instant query a live tick at `time` sent.
    public func at(_ time: Timestamp) -> PrometheusProvider {
        var provider = self
        provider.evaluationTime = time
        return provider
    }

    /// `address` + `/api/v1/query?query=…` (and `&time=` seconds with milliseconds, when evaluated at a set
    /// time), keeping any path prefix of the address.
    func queryURL(_ query: String) -> String {
        var base = config.address
        while base.hasSuffix("/") { base.removeLast() }
        var url = base + "/api/v1/query?query=" + percentEncoded(query)
        if let ms = evaluationTime?.millisecondsSinceEpoch {
            let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
            let millis = String(ms - seconds * 1000)
            url += "&time=\(seconds).\(String(repeating: "0", count: 3 - millis.count))\(millis)"
        }
        return url
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
    /// What an answer of Prometheus means for a check. Pure, so every shape is tested without a server.
    static func reading(from response: HTTPResponse, endpoint: MetricEndpoint) throws -> MetricReading {
        let answer: Answer
        do {
            answer = try Answer(json: response.body)
        } catch {
            // Not an answer: a proxy's or a load balancer's page, or a broken body.
            guard (200..<300).contains(response.status) else { throw endpoint.failure(response) }
            throw endpoint.badResponse("not a Prometheus query answer (\(error)): \(snippet(response.body))")
        }
        if answer.status == "error" || !(200..<300).contains(response.status) {
            throw endpoint.failure(response, "\(answer.errorType ?? "error"): \(answer.error ?? "no message")")
        }
        guard answer.status == "success" else {
            throw endpoint.badResponse(
                "not a Prometheus query answer (status \"\(answer.status)\"): \(snippet(response.body))")
        }
        guard let data = answer.data else {
            throw endpoint.badResponse("not a Prometheus query answer (no data): \(snippet(response.body))")
        }
        let result = data.result
        switch data.resultType {
        case "scalar":
            guard result.isList, result.count == 2, let text = result.secondText else {
                throw endpoint.badResponse("a sample that is not [time, \"number\"] at data.result")
            }
            return try sampleReading(text, at: "data.result", endpoint: endpoint)
        case "vector":
            guard result.isList else { throw endpoint.badResponse("a vector result that is not a list at data.result") }
            if result.count == 0 { return .noData(reason: "the query returned an empty result (no such series?)") }
            guard result.count == 1 else {
                throw endpoint.badResponse(
                    "the query must return one value but returned \(result.count) series "
                        + "(\(labelSets(result))); aggregate them, e.g. with sum(...)")
            }
            guard let series = result.first[0], series.hasValue else {
                throw endpoint.badResponse("a vector element without a value at data.result[0]")
            }
            guard let text = series.valueText else {
                throw endpoint.badResponse("a sample that is not [time, \"number\"] at data.result[0].value")
            }
            return try sampleReading(text, at: "data.result[0].value", endpoint: endpoint)
        case "matrix":
            throw endpoint.badResponse(
                "the query must return one value but returned a range vector; "
                    + "wrap the [window] selector in a function such as rate(...) or avg_over_time(...)")
        default:
            throw endpoint.badResponse("the query must return a number but returned a \(data.resultType)")
        }
    }

    /// The reading of a sample's value text.
    private static func sampleReading(_ text: String, at path: String, endpoint: MetricEndpoint) throws
        -> MetricReading
    {
        guard let reading = MetricReading(numberText: text) else {
            throw endpoint.badResponse(
                "a sample that is not [time, \"number\"] at \(path): \"\(text)\" is not a number")
        }
        return reading
    }

    /// The label sets of the first few series, to show which labels the query forgot to aggregate.
    private static func labelSets(_ result: ResultList) -> String {
        let shown = result.first.map { series -> String in
            let labels = (series?.labels ?? []).sorted { $0.name < $1.name }.map { label -> String in
                label.value.map { "\(label.name)=\"\($0)\"" } ?? label.name
            }
            return "{" + labels.joined(separator: ",") + "}"
        }
        return shown.joined(separator: ", ") + (result.count > shown.count ? ", …" : "")
    }
}

/// `text` percent-encoded for a URL query value: every UTF-8 byte but RFC 3986's unreserved characters as `%XX`
/// (what Foundation's `addingPercentEncoding` gives, which built a character set per query and cost ~57 k
/// instructions a query).
func percentEncoded(_ text: String) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    var encoded: [UInt8] = []
    encoded.reserveCapacity(text.utf8.count)
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            encoded.append(byte)
        default:
            encoded.append(contentsOf: [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]])
        }
    }
    return String(decoding: encoded, as: UTF8.self)
}
