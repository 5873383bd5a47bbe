import Foundation
import SluiceAPI
import SluiceCore
import SluiceStore

/// An in-memory `SluiceBackend` for the API's own tests: it records what the API asked and answers with
/// what a real backend would for the cases under test (404, 409, 422). The real store and controller
/// are exercised through `sluice serve` in the CLI tests.
final class FakeBackend: SluiceBackend, @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [StrategyKey: [AppliedStrategy]] = [:]
    private var rolloutsByID: [String: Rollout] = [:]
    private var log: [Event] = []
    private(set) var commands: [(String, Command)] = []
    var ready = true
    var metrics = RuntimeMetrics()
    let signal: EventSignal
    private var counter = 0

    init(signal: EventSignal) { self.signal = signal }

    static let epoch = Timestamp(millisecondsSinceEpoch: 1_795_000_000_000)

    static func strategy(_ key: StrategyKey) -> Strategy {
        Strategy(
            name: key.name, namespace: key.namespace, target: .deployment(name: key.name, container: nil),
            traffic: .caddy(adminURL: "http://127.0.0.1:2019", handlerID: key.name),
            stages: [Stage(name: "canary", weight: 5, hold: .seconds(60)), Stage(name: "full", weight: 100, hold: .seconds(60))],
            analysis: Analysis(checks: [Check(name: "error-rate", provider: "prom", query: "up", max: 0.01)]))
    }

    func seedStrategy(_ key: StrategyKey) {
        lock.withLock {
            stored[key] = [AppliedStrategy(strategy: Self.strategy(key), revision: 1, source: "seed", appliedAt: Self.epoch, appliedBy: "seed")]
        }
    }

    /// Stores `applied` as the newest revision of its strategy.
    func seed(_ applied: AppliedStrategy) {
        lock.withLock { stored[applied.strategy.key, default: []].append(applied) }
    }

    /// Stores `rollout` in place of the one with its id (a test sets fields the fake does not drive).
    func replace(_ rollout: Rollout) {
        lock.withLock { rolloutsByID[rollout.id] = rollout }
    }

    /// Appends an event as the store would (next seq) and wakes followers.
    @discardableResult
    func append(rollout: String, type: EventType, message: String, actor: String = Event.controller) -> Int64 {
        let seq: Int64 = lock.withLock {
            let seq = Int64(log.count + 1)
            let key = rolloutsByID[rollout]?.strategy ?? StrategyKey(namespace: "default", name: "x")
            log.append(Event(seq: seq, time: Self.epoch, rollout: rollout, strategy: key, type: type, actor: actor, message: message))
            return seq
        }
        signal.advance(to: seq)
        return seq
    }

    /// Appends `event` with the next seq, as the store would, and wakes followers.
    @discardableResult
    func append(_ event: Event) -> Event {
        let stored: Event = lock.withLock {
            var event = event
            event.seq = Int64(log.count + 1)
            log.append(event)
            return event
        }
        signal.advance(to: stored.seq)
        return stored
    }

    var eventLog: [Event] { lock.withLock { log } }

    func isReady() async -> Bool { lock.withLock { ready } }

    func strategies() async throws -> [AppliedStrategy] {
        lock.withLock { stored.keys.sorted().compactMap { stored[$0]?.last } }
    }

    func strategy(_ key: StrategyKey, revision: Int?) async throws -> AppliedStrategy? {
        lock.withLock {
            guard let revisions = stored[key] else { return nil }
            guard let revision else { return revisions.last }
            return revisions.first { $0.revision == revision }
        }
    }

    func applyStrategy(_ key: StrategyKey, source: String, actor: String, dryRun: Bool) async throws -> ApplyResult {
        if source.contains("weight: 500") {
            throw APIError(.invalidStrategy, "1 error in \(key)", details: [
                ErrorDetail(path: "spec.stages[0].weight", line: 3, column: 13, message: "weight must be 1...100, got 500"),
            ])
        }
        return lock.withLock {
            let previous = stored[key]?.last
            if previous?.source == source {
                return ApplyResult(strategy: key.description, outcome: .unchanged, revision: previous!.revision, dryRun: dryRun)
            }
            let revision = (previous?.revision ?? 0) + 1
            if !dryRun {
                stored[key, default: []].append(
                    AppliedStrategy(strategy: Self.strategy(key), revision: revision, source: source, appliedAt: Self.epoch, appliedBy: actor))
            }
            return ApplyResult(
                strategy: key.description, outcome: previous == nil ? .created : .configured, revision: revision,
                diff: previous == nil ? nil : "-\(previous!.source)\n+\(source)", dryRun: dryRun)
        }
    }

    func deleteStrategy(_ key: StrategyKey, actor: String) async throws -> AppliedStrategy {
        try lock.withLock {
            guard let latest = stored[key]?.last else { throw APIError(.notFound, "no strategy \(key)") }
            if rolloutsByID.values.contains(where: { $0.strategy == key && !$0.phase.isTerminal }) {
                throw APIError(.conflict, "strategy \(key) has an active rollout")
            }
            stored[key] = nil
            return latest
        }
    }

    func startRollout(_ key: StrategyKey, version: String, actor: String, supersede: Bool) async throws -> Rollout {
        let rollout: Rollout = try lock.withLock {
            guard stored[key] != nil else { throw APIError(.notFound, "no strategy \(key)") }
            if !supersede, rolloutsByID.values.contains(where: { $0.strategy == key && !$0.phase.isTerminal }) {
                throw APIError(.conflict, "a rollout of \(key) is active")
            }
            counter += 1
            let rollout = Rollout(
                id: "r-\(counter)", strategy: key, strategyRevision: stored[key]!.last!.revision, version: version,
                phase: .progressing, desiredWeight: 5, createdAt: Self.epoch)
            rolloutsByID[rollout.id] = rollout
            return rollout
        }
        append(rollout: rollout.id, type: .rolloutStarted, message: "started \(version)", actor: actor)
        return rollout
    }

    func rollouts(strategy: StrategyKey?, phase: Phase?, after: String?, limit: Int) async throws -> [Rollout] {
        try lock.withLock {
            var listed = rolloutsByID.values.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
            if let after {
                guard let cursor = listed.firstIndex(where: { $0.id == after }) else {
                    throw APIError(.notFound, "rollout \(after) (the page cursor) does not exist")
                }
                listed = Array(listed[(cursor + 1)...])
            }
            return Array(
                listed.filter { (strategy == nil || $0.strategy == strategy) && (phase == nil || $0.phase == phase) }
                    .prefix(limit))
        }
    }

    func rollout(id: String) async throws -> Rollout? { lock.withLock { rolloutsByID[id] } }

    /// Samples by rollout id and check name, as `seedSamples` left them.
    private var samplesByCheck: [String: [Sample]] = [:]

    func seedSamples(rollout: String, _ samples: [Sample]) {
        lock.withLock { for sample in samples { samplesByCheck[rollout + "/" + sample.check, default: []].append(sample) } }
    }

    func samples(rollout: String, check: String) async throws -> [Sample] {
        lock.withLock { samplesByCheck[rollout + "/" + check] ?? [] }
    }

    func rolloutSummary() async throws -> RolloutSummary {
        lock.withLock {
            var counts: [Phase: Int] = [:]
            var newest: [StrategyKey: Rollout] = [:]
            for rollout in rolloutsByID.values {
                counts[rollout.phase, default: 0] += 1
                if let seen = newest[rollout.strategy], (seen.createdAt, seen.id) >= (rollout.createdAt, rollout.id) { continue }
                newest[rollout.strategy] = rollout
            }
            return RolloutSummary(countsByPhase: counts, newest: newest.keys.sorted().map { newest[$0]! })
        }
    }

    func command(rolloutID: String, _ command: Command) async throws -> Rollout {
        let rollout: Rollout = try lock.withLock {
            guard let rollout = rolloutsByID[rolloutID] else { throw APIError(.notFound, "no rollout \(rolloutID)") }
            if rollout.phase.isTerminal { throw APIError(.conflict, "rollout \(rolloutID) is \(rollout.phase.rawValue)") }
            commands.append((rolloutID, command))
            return rollout
        }
        append(rollout: rolloutID, type: EventType("CommandReceived"), message: "\(command)")
        return rollout
    }

    func finish(_ id: String, phase: Phase) {
        lock.withLock { rolloutsByID[id]?.phase = phase }
    }

    func events(_ query: EventQuery) async throws -> [Event] {
        lock.withLock { Array(log.filter { $0.seq > query.after && query.matches($0) }.prefix(query.limit)) }
    }

    func eventStart(_ query: EventQuery, since: Timestamp?, tail: Int?) async throws -> Int64 {
        let after = query.after
        return lock.withLock {
            var window = log.filter { $0.seq > after && query.matches($0) }
            if let since { window = window.filter { $0.time >= since } }
            if let tail { window = Array(window.suffix(tail)) }
            guard let first = window.first else { return max(after, log.last?.seq ?? 0) }
            return first.seq - 1
        }
    }

    func runtimeMetrics() async -> RuntimeMetrics { lock.withLock { metrics } }
}
