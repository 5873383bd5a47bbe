import Foundation
import Hummingbird
import SluiceCore

extension APIServer {
    /// `GET /v1/strategies`, `GET|PUT|DELETE /v1/strategies/{ns}/{name}`.
    func addStrategyRoutes(to router: Router<APIContext>) {
        // The source may hold header values and webhook URLs in clear: only those who may change it see it.
        route(router, .get, "/v1/strategies", role: .viewer) { _, _, identity in
            let showingSource = identity.role.includes(.release)
            return try Self.json(
                StrategyList(
                    strategies: try await backend.strategies().map { StrategyView($0, showingSource: showingSource) }))
        }
        route(router, .get, "/v1/strategies/:namespace/:name", role: .viewer) { _, context, identity in
            let key = try Self.strategyKey(context)
            guard let stored = try await backend.strategy(key, revision: nil) else {
                throw try await unknownStrategy(key)
            }
            return try Self.json(StrategyView(stored, showingSource: identity.role.includes(.release)))
        }
        route(router, .put, "/v1/strategies/:namespace/:name", role: .release) { request, context, identity in
            let key = try Self.strategyKey(context)
            let buffer = try await Self.body(of: request)
            guard let source = buffer.getString(at: buffer.readerIndex, length: buffer.readableBytes),
                !source.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
            else {
                throw APIError(.badRequest, "the body must be the strategy document, YAML or JSON, in UTF-8")
            }
            let contentType = request.headers[.contentType]?.lowercased() ?? ""
            if contentType.contains("json") {
                // YAML would accept most broken JSON differently; a JSON body must parse as JSON.
                do {
                    _ = try JSONDecoder().decode(JSONValue.self, from: Data(source.utf8))
                } catch {
                    throw APIError(.badRequest, "the body is declared JSON but is not valid JSON")
                }
            }
            let dryRun = request.uri.queryParameters.get("dryRun").map { $0 == "true" || $0 == "1" } ?? false
            let result = try await backend.applyStrategy(key, source: source, actor: identity.name, dryRun: dryRun)
            let status: HTTPResponse.Status = result.outcome == .created && !dryRun ? .created : .ok
            return try Self.json(result, status: status)
        }
        route(router, .delete, "/v1/strategies/:namespace/:name", role: .release) { _, context, identity in
            let key = try Self.strategyKey(context)
            guard try await backend.strategy(key, revision: nil) != nil else { throw try await unknownStrategy(key) }
            let deleted = try await backend.deleteStrategy(key, actor: identity.name)
            return try Self.json(DeleteResult(strategy: key.description, revision: deleted.revision))
        }
    }

    static func strategyKey(_ context: APIContext) throws -> StrategyKey {
        guard let namespace = context.parameters.get("namespace"), let name = context.parameters.get("name") else {
            throw APIError(.badRequest, "the path must name a strategy: /v1/strategies/{namespace}/{name}")
        }
        return StrategyKey(namespace: namespace, name: name)
    }
}

extension APIServer {
    /// The 404 for a strategy that is not applied. A bare name defaults to the `default` namespace, so when the
    /// name exists in other namespaces the message names them: `no strategy default/web; did you mean shop/web?`.
    func unknownStrategy(_ key: StrategyKey) async throws -> APIError {
        let elsewhere = try await backend.strategies().map(\.strategy.key)
            .filter { $0.name == key.name && $0.namespace != key.namespace }
        guard !elsewhere.isEmpty else { return APIError(.notFound, "no strategy \(key)") }
        let names = elsewhere.map(\.description).joined(separator: " or ")
        return APIError(.notFound, "no strategy \(key); did you mean \(names)?")
    }
}
