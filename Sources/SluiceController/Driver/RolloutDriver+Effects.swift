import Logging
import SluiceCore
import SluiceStore
import Tracing

extension RolloutDriver {
    /// Runs the rollout's pending effects in order in a new batch. The batch waits for the one before it
    /// (effects never interleave); with `preempting`, the one before is cancelled first, so a rollback does
    /// not wait behind a slow weight change. Effects it cancels stay pending or were superseded.
    func startEffects(preempting: Bool, wakeWhenDone: Bool = false) {
        let previous = effects
        if preempting { previous?.cancel() }
        controller.counters.withLock { $0.runningEffectBatches += 1 }
        effectsBatch += 1
        let batch = effectsBatch
        effects = Task {
            // Cancelling this batch (a stop) cancels the one it waits for too.
            await withTaskCancellationHandler {
                await previous?.value
            } onCancel: {
                previous?.cancel()
            }
            await self.runPendingEffects()
            if wakeWhenDone { self.wake() }
            self.controller.counters.withLock { $0.runningEffectBatches -= 1 }
            // A finished task that is still referenced keeps its memory (~5 KB): let it go unless a newer batch
            // took its place (which then holds it only until it has waited for it).
            if self.effectsBatch == batch { self.effects = nil }
        }
    }

    /// Carries out pending effects oldest first and confirms each; the first failure stops the batch
    /// (the store abandons the rest: order matters) and the next tick is told about it.
    private func runPendingEffects() async {
        while !Task.isCancelled {
            guard
                let pending = await retryingStore({ try await self.store.effects(rollout: self.id, status: .pending) }),
                !pending.isEmpty
            else { return }
            guard let record = await retryingStore({ try await self.store.rolloutRecord(self.id) }), let record,
                let stored = await strategy(of: record.rollout)
            else { return }
            let providers: RolloutProviders
            do {
                providers = try controller.providers.providers(for: stored.strategy, rollout: record.rollout)
            } catch {
                await fail(pending[0], error)
                return
            }
            // In the trace of the command (or start) they carry out, also when replayed by a later run or replica.
            let allConfirmed = await traced("effects", continuing: record.rollout.traceparent) {
                await self.runInOrder(pending, providers)
            }
            if !allConfirmed { return }
        }
    }

    /// Runs `pending` oldest first and confirms each; false when one failed or the driver stops.
    private func runInOrder(_ pending: [StoredEffect], _ providers: RolloutProviders) async -> Bool {
        for effect in pending {
            if Task.isCancelled { return false }
            // Recorded while this replica held the shard; carried out only while it still may act on it (its own lease
            // deadline has not passed), or a stopped-and-resumed replica would write the router.
            guard controller.mayAct(on: shard) else {
                lostOwnership("the shard's lease is not held or its deadline passed")
                return false
            }
            do {
                logger.debug("running effect", metadata: ["effect": "\(effect.effect)"])
                try await withTimeout(controller.options.effectTimeout, on: clock, "\(effect.effect)") {
                    try await Self.perform(effect.effect, providers)
                }
            } catch {
                // Cancelled (preempted by a rollback, or shutting down): left pending, replayed or superseded.
                if Task.isCancelled { return false }
                await fail(effect, error)
                return false
            }
            let confirmed: Void? = await retryingStore {
                try await self.store.confirmEffect(effect.id, now: self.clock.now())
            }
            if confirmed == nil { return false }
            controller.counters.withLock { $0.effectsConfirmed += 1 }
        }
        return true
    }

    /// `body` in a span of the controller's tracer whose parent is `traceparent` (a new trace when nil); just `body`
    /// when the controller has no tracer, at no cost.
    func traced<T: Sendable>(
        _ operation: String, continuing traceparent: String?, _ body: @Sendable () async -> T
    ) async -> T {
        guard let tracer = controller.tracer else { return await body() }
        return await Self.inSpan(tracer, operation, rollout: id, continuing: traceparent, body)
    }

    private static func inSpan<T: Sendable, Traced: Tracer>(
        _ tracer: Traced, _ operation: String, rollout: String, continuing traceparent: String?,
        _ body: @Sendable () async -> T
    ) async -> T {
        await tracer.withSpan(operation, context: tracer.context(continuing: traceparent), ofKind: .internal) { span in
            span.attributes["rollout.id"] = rollout
            return await body()
        }
    }

    private func fail(_ effect: StoredEffect, _ error: any Error) async {
        logger.warning("effect failed", metadata: ["effect": "\(effect.effect)", "error": "\(error)"])
        controller.counters.withLock { $0.effectsFailed += 1 }
        _ = await retryingStore {
            try await self.store.failEffect(effect.id, message: "\(error)", now: self.clock.now())
        }
    }

    static func perform(_ effect: Effect, _ providers: RolloutProviders) async throws {
        switch effect {
        case .deployCanary(let version, let weight):
            try await providers.workload.deployCanary(version: version, weight: weight)
        case .setWeight(let weight): try await providers.router.setCanaryWeight(weight)
        case .promoteStable(let version): try await providers.workload.promote(version: version)
        case .deployPreviousCanary(let promoted): try await providers.workload.deployPreviousCanary(promoted: promoted)
        case .restoreStable(let promoted): try await providers.workload.restoreStable(promoted: promoted)
        case .scaleDownCanary: try await providers.workload.scaleDownCanary()
        case .finalizeTraffic: try await providers.router.finalize()
        }
    }
}
