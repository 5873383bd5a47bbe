import SluiceCore
import SluiceProviders
import SluiceStore

/// The observe step of a tick: the current stage's checks (only while analysis runs), the router's
/// weight and the canary's readiness, all concurrently, each bounded by `observeTimeout`. A failing
/// provider gives no-data (never a pass); a failing read-back gives nil.
struct Observer {
    let controller: Controller

    func observe(_ rollout: Rollout, strategy: Strategy, failures: [StoredEffect], now: Timestamp) async
        -> Observations
    {
        let failed = failures.map { EffectFailure(effect: $0.effect, message: $0.message ?? "failed") }
        // Analysis runs while the canary takes traffic (decide's one rule, Promoting included: a breach while a
        // promotion is retried still rolls back); a rollback never waits for it.
        let checks = rollout.checksToSample(in: strategy)
        let providers: RolloutProviders
        do {
            providers = try controller.providers.providers(for: strategy, rollout: rollout)
        } catch {
            let samples = checks.map {
                Sample(check: $0.name, time: now, value: nil, verdict: .noData, reason: "\(error)")
            }
            return Observations(
                samples: Dictionary(samples.map { ($0.check, $0) }, uniquingKeysWith: { a, _ in a }),
                failedEffects: failed)
        }
        let limit = controller.options.observeTimeout
        async let samples = sample(checks, providers: providers, rollout: rollout, strategy: strategy, now: now)
        async let weight = try? withTimeout(limit, on: controller.clock, "reading the router's weight") {
            try await providers.router.canaryWeight()
        }
        async let canary = try? withTimeout(limit, on: controller.clock, "reading the canary's readiness") {
            try await providers.workload.canaryReport()
        }
        async let health = routerHealth(providers.router, rollout: rollout, limit: limit)
        let report = await canary
        return Observations(
            samples: await samples, routerWeight: await weight, canary: report?.status, failedEffects: failed,
            canaryEvidence: report?.evidence, routerHealth: await health)
    }

    /// The router's own view of the canary, asked only while the canary should have traffic (docs/judge.md
    /// "The router's view"); nil when the router has none or could not be read.
    private func routerHealth(_ router: any TrafficRouter, rollout: Rollout, limit: Duration) async
        -> RouterCanaryHealth?
    {
        guard rollout.desiredWeight > 0, !rollout.phase.isTerminal, rollout.phase != .rollingBack,
            let reporter = router as? any CanaryHealthReporting
        else { return nil }
        let health = try? await withTimeout(limit, on: controller.clock, "reading the router's view of the canary") {
            try await reporter.canaryHealth()
        }
        return health ?? nil
    }

    private func sample(
        _ checks: [Check], providers: RolloutProviders, rollout: Rollout, strategy: Strategy, now: Timestamp
    ) async -> [String: Sample] {
        let runner = CheckRunner(providers: providers.metrics)
        let (limit, clock) = (controller.options.observeTimeout, controller.clock)
        let context = TemplateContext.forChecks(of: strategy, rollout: rollout)
        return await withTaskGroup(of: Sample.self) { group in
            for check in checks {
                group.addTask {
                    do {
                        return try await withTimeout(limit, on: clock, "check \(check.name)") {
                            await runner.run(check, context: context).sample(at: now)
                        }
                    } catch {
                        return Sample(check: check.name, time: now, value: nil, verdict: .noData, reason: "\(error)")
                    }
                }
            }
            var samples: [String: Sample] = [:]
            for await sample in group { samples[sample.check] = sample }
            return samples
        }
    }
}
