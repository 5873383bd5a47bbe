import Foundation
import SluiceCore

/// A strategy's checks answered from Prometheus history, for `sluice replay` (docs/judge.md "Replay"): every query
/// is the instant query a live tick would have sent, evaluated at the tick's time (`time=`), through the same
/// provider and `CheckRunner`, so empty results, NaN, several series and Prometheus' errors mean what they mean live.
public struct PrometheusHistory: Sendable {
    /// The strategy's Prometheus providers, by key.
    public let providers: [String: PrometheusProvider]

    /// The Prometheus providers of `strategy`, each at `address` when given (a port-forward to the Prometheus the
    /// strategy names). A check answered by any other provider cannot be replayed: the error names it.
    public init(strategy: Strategy, registry: MetricProviderRegistry, address: String? = nil) throws {
        let usedBy = Dictionary(
            (strategy.analysis.checks + strategy.stages.flatMap(\.checks)).map { ($0.provider, $0.name) },
            uniquingKeysWith: { first, _ in first })
        var providers: [String: PrometheusProvider] = [:]
        for (name, config) in strategy.analysis.providers.sorted(by: { $0.key < $1.key }) {
            guard case .prometheus(var settings) = config else {
                guard let check = usedBy[name] else { continue }
                throw ProviderError(
                    .invalidConfiguration, provider: "\(config.kind.rawValue) \"\(name)\"",
                    "check \(check) uses it, and it has no history to replay; "
                        + "only Prometheus providers can be replayed")
            }
            if let address { settings.address = address }
            let made = try registry.makeProvider(name: name, config: .prometheus(settings))
            guard let provider = made as? PrometheusProvider else { continue }
            providers[name] = provider
        }
        self.providers = providers
    }

    /// Asks every provider one query at `time`, so an unreachable or refusing Prometheus is one clear error before
    /// a replay starts rather than a timeline of no-data samples.
    public func probe(at time: Timestamp) async throws {
        for (_, provider) in providers.sorted(by: { $0.key < $1.key }) {
            _ = try await provider.at(time).read(query: "vector(1)")
        }
    }

    /// `checks` of `rollout` sampled at `time`, as the controller's observe step would have sampled them then.
    public func sample(_ checks: [Check], rollout: Rollout, strategy: Strategy, at time: Timestamp) async
        -> [String: Sample]
    {
        let runner = CheckRunner(providers: providers.mapValues { $0.at(time) as any MetricProvider })
        let results = await runner.run(checks, context: .forChecks(of: strategy, rollout: rollout))
        return Dictionary(results.map { ($0.check, $0.sample(at: time)) }, uniquingKeysWith: { first, _ in first })
    }
}

extension TemplateContext {
    /// What a check's templates are filled with in `rollout`, with an `upstreams` target's pools in the roles they
    /// have for this rollout (they swap on every promotion); while Baking both name the new version's.
    public static func forChecks(of strategy: Strategy, rollout: Rollout) -> TemplateContext {
        var context = TemplateContext.forChecks(of: strategy, version: rollout.version)
        if let pools = rollout.pools {
            context.stable = pools.stable.joined(separator: "|")
            context.canary = pools.canary.joined(separator: "|")
        }
        // Baking: the new version is the stable one and serves everything; `{{canary}}` still means the version
        // under test, so both name it (docs/decide.md "Baking").
        if rollout.phase == .baking {
            context.canary = context.stable
        }
        return context
    }
}
