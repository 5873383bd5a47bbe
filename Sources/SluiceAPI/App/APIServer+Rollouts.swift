import Hummingbird
import SluiceCore

extension APIServer {
    /// The most rollouts one `GET /v1/rollouts` returns (and its default `limit`).
    static let rolloutPage = 1000

    /// `POST|GET /v1/rollouts`, `GET /v1/rollouts/{id}`, and the commands on a rollout.
    func addRolloutRoutes(to router: Router<APIContext>) {
        route(router, .post, "/v1/rollouts", role: .ci) { request, _, identity in
            guard let body = try await Self.decode(StartRolloutRequest.self, from: request) else {
                throw APIError(.badRequest, "a JSON body {strategy, namespace, version} is required")
            }
            guard let key = StrategyKey(parsing: body.strategy, defaultNamespace: body.namespace ?? "default") else {
                throw APIError(.badRequest, "`strategy` must be NAME or NAMESPACE/NAME, got \"\(body.strategy)\"")
            }
            let version = body.version.trimmingCharacters(in: .whitespaces)
            guard !version.isEmpty else { throw APIError(.badRequest, "`version` must not be empty") }
            if let problem = Rollout.versionProblem(version) { throw APIError(.badRequest, "`version` " + problem) }
            guard try await backend.strategy(key, revision: nil) != nil else { throw try await unknownStrategy(key) }
            let rollout = try await backend.startRollout(
                key, version: version, actor: identity.name, supersede: body.supersede ?? false)
            return try Self.json(try await view(rollout), status: .created)
        }
        route(router, .get, "/v1/rollouts", role: .viewer) { request, _, _ in
            let query = request.uri.queryParameters
            let key = try Self.strategyFilter(query)
            var phase: Phase?
            if let text = query.get("phase") {
                guard let parsed = Phase.allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }) else {
                    throw APIError(
                        .badRequest,
                        "unknown phase \"\(text)\"; one of " + Phase.allCases.map(\.rawValue).joined(separator: ", "))
                }
                phase = parsed
            }
            var limit = Self.rolloutPage
            if let text = query.get("limit") {
                guard let value = Int(text), (1...Self.rolloutPage).contains(value) else {
                    throw APIError(.badRequest, "`limit` must be 1...\(Self.rolloutPage), got \"\(text)\"")
                }
                limit = value
            }
            let after = query.get("after")
            if let after, after.isEmpty { throw APIError(.badRequest, "`after` must name a rollout (the `next` of a page)") }
            // One more than the page says whether another page follows.
            let rollouts = try await backend.rollouts(strategy: key, phase: phase, after: after, limit: limit + 1)
            let page = rollouts.prefix(limit)
            var strategies: [StrategyRevision: Strategy?] = [:]
            var views: [RolloutView] = []
            for rollout in page { views.append(try await view(rollout, strategies: &strategies)) }
            return try Self.json(RolloutList(rollouts: views, next: rollouts.count > limit ? page.last?.id : nil))
        }
        route(router, .get, "/v1/rollouts/:id", role: .viewer) { _, context, _ in
            try Self.json(try await view(try await existingRollout(context)))
        }
        route(router, .post, "/v1/rollouts/:id/rollback", role: .oncall) { request, context, identity in
            let id = try await existingRollout(context).id
            guard let body = try await Self.decode(RollbackRequest.self, from: request) else {
                throw APIError(.badRequest, "a JSON body {reason} is required")
            }
            let reason = body.reason.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !reason.isEmpty else { throw APIError(.badRequest, "`reason` must say why (it goes into the event log)") }
            return try await run(id, .rollback(actor: identity.name, reason: reason))
        }
        route(router, .post, "/v1/rollouts/:id/promote", role: .oncall) { request, context, identity in
            let id = try await existingRollout(context).id
            let body = try await Self.decode(PromoteRequest.self, from: request, allowEmpty: true)
            return try await run(id, .promote(actor: identity.name, full: body?.full ?? false))
        }
        route(router, .post, "/v1/rollouts/:id/pause", role: .oncall) { _, context, identity in
            let id = try await existingRollout(context).id
            return try await run(id, .pause(actor: identity.name))
        }
        route(router, .post, "/v1/rollouts/:id/resume", role: .oncall) { _, context, identity in
            let id = try await existingRollout(context).id
            return try await run(id, .resume(actor: identity.name))
        }
    }

    private func existingRollout(_ context: APIContext) async throws -> Rollout {
        guard let id = context.parameters.get("id") else { throw APIError(.badRequest, "the path must name a rollout") }
        guard let rollout = try await backend.rollout(id: id) else { throw APIError(.notFound, "no rollout \(id)") }
        return rollout
    }

    private func run(_ id: String, _ command: Command) async throws -> Response {
        try Self.json(try await view(try await backend.command(rolloutID: id, command)))
    }

    /// The rollout with the stage and hold of the strategy revision it runs.
    func view(_ rollout: Rollout) async throws -> RolloutView {
        var strategies: [StrategyRevision: Strategy?] = [:]
        return try await view(rollout, strategies: &strategies)
    }

    /// A strategy revision, as the views of a page share it.
    struct StrategyRevision: Hashable {
        var key: StrategyKey
        var revision: Int
    }

    /// `view(_:)` reading each strategy revision once for a whole page (revisions never change).
    func view(_ rollout: Rollout, strategies: inout [StrategyRevision: Strategy?]) async throws -> RolloutView {
        let revision = StrategyRevision(key: rollout.strategy, revision: rollout.strategyRevision)
        if strategies[revision] == nil {
            strategies[revision] = .some(
                try await backend.strategy(rollout.strategy, revision: rollout.strategyRevision)?.strategy)
        }
        return RolloutView(rollout, strategy: strategies[revision] ?? nil, now: now())
    }

    /// `strategy=NAME|NS/NAME` with an optional `namespace=`.
    static func strategyFilter(_ query: Parameters) throws -> StrategyKey? {
        guard let text = query.get("strategy") else { return nil }
        guard let key = StrategyKey(parsing: text, defaultNamespace: query.get("namespace") ?? "default") else {
            throw APIError(.badRequest, "`strategy` must be NAME or NAMESPACE/NAME, got \"\(text)\"")
        }
        return key
    }
}
