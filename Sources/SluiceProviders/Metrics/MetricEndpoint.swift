import Foundation
import SluiceCore
import SluiceHTTP

/// What both metric providers share: one GET with the strategy's headers and a deadline, and a
/// `ProviderError` for anything that is not an answer. No retry: a tick that gets no answer is a
/// no-data sample, and the next tick asks again; a retry would only push the tick past its interval.
struct MetricEndpoint: Sendable {
    /// How errors name the provider, e.g. `prometheus "prom" at http://host:9090`; never a secret.
    let provider: String
    let client: any HTTPClient
    let timeout: Duration
    let headers: ProviderHeaders

    init(
        kind: String, name: String, url: String, client: any HTTPClient, timeout: Duration,
        headers: ProviderHeaders = ProviderHeaders()
    ) {
        self.init(
            provider: Self.describe(kind: kind, name: name, url: url), client: client, timeout: timeout,
            headers: headers)
    }

    /// An endpoint named `provider`, as `describe(kind:name:url:)` made it: providers are built every tick, and
    /// describing one twice was a second redaction of its URL each time.
    init(provider: String, client: any HTTPClient, timeout: Duration, headers: ProviderHeaders = ProviderHeaders()) {
        self.provider = provider
        self.client = client
        self.timeout = timeout
        self.headers = headers
    }

    /// How errors name a provider: its kind, its name and its URL without user info and query.
    static func describe(kind: String, name: String, url: String) -> String {
        "\(kind) \"\(name)\" at \(Redaction.url(url))"
    }

    /// GET `url`; a response of any status, or `ProviderError.unavailable` when none came in time.
    func get(_ url: String, auth: Authentication? = nil) async throws -> HTTPResponse {
        var fields = try headers.fields()
        if !headers.contains("Accept") {
            fields.append((name: "Accept", value: "application/json"))
        }
        let request = HTTPRequest(
            method: "GET", url: url, headers: fields, timeout: timeout, connectTimeout: min(timeout, .seconds(5)),
            maxResponseBytes: 4 << 20, auth: auth, retry: .none
        )
        do {
            return try await client.execute(request)
        } catch let error as ProviderError {
            throw error
        } catch let error as CancellationError {
            throw error
        } catch let error as HTTPError {
            // Not the error's own description: its URL holds the whole query (and a web URL may hold a key).
            let after = error.code == .timedOut ? " after \(timeout)" : ""
            throw ProviderError(
                .unavailable, provider: provider, "no answer (\(error.code.rawValue)\(after)): \(error.message)")
        } catch {
            throw ProviderError(.unavailable, provider: provider, "no answer: \(error)")
        }
    }

    /// The error for a response that is not a success: 5xx is unavailable (try again), 4xx rejected.
    func failure(_ response: HTTPResponse, _ message: String? = nil) -> ProviderError {
        let detail = message ?? snippet(response.body)
        switch response.status {
        case 401, 403:
            return ProviderError(
                .rejected, provider: provider, "not authorised (check the token and headers): \(detail)",
                status: response.status)
        case 400..<500:
            return ProviderError(.rejected, provider: provider, detail, status: response.status)
        default:
            return ProviderError(.unavailable, provider: provider, detail, status: response.status)
        }
    }

    /// A response that answered, but not with something usable.
    func badResponse(_ message: String) -> ProviderError {
        ProviderError(.badResponse, provider: provider, message)
    }
}

/// The start of a body on one line, for error messages.
func snippet(_ body: Data, limit: Int = 300) -> String {
    let text = String(decoding: body.prefix(limit), as: UTF8.self)
        .split(whereSeparator: \.isNewline).joined(separator: " ")
    if text.isEmpty { return "empty body" }
    return body.count > limit ? text + "…" : text
}
