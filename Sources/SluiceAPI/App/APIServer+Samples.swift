import Hummingbird
import SluiceCore

extension APIServer {
    /// `GET /v1/rollouts/{id}/samples`: each check's recent samples with its threshold, for the dashboard's charts.
    func addSampleRoutes(to router: Router<APIContext>) {
        route(router, .get, "/v1/rollouts/:id/samples", role: .viewer) { _, context, _ in
            guard let id = context.parameters.get("id") else {
                throw APIError(.badRequest, "the path must name a rollout")
            }
            guard let rollout = try await backend.rollout(id: id) else { throw APIError(.notFound, "no rollout \(id)") }
            let strategy = try await backend.strategy(rollout.strategy, revision: rollout.strategyRevision)?.strategy
            // The strategy's checks in its order, then any the rollout has samples of and the revision lacks.
            let checks = strategy?.analysis.checks ?? []
            let names =
                checks.map(\.name)
                + rollout.checks.keys.sorted().filter { name in !checks.contains { $0.name == name } }
            var views: [CheckSamplesView] = []
            for name in names {
                let samples = try await backend.samples(rollout: id, check: name)
                views.append(CheckSamplesView(name: name, check: checks.first { $0.name == name }, samples: samples))
            }
            return try Self.json(SampleList(rollout: id, checks: views))
        }
    }
}
