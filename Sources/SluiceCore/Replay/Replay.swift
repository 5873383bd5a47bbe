import Foundation

/// A rollout run on a virtual clock against recorded metrics (`sluice replay`, docs/judge.md "Replay"): the same
/// `decide` a live rollout runs, tick by tick from `from` to `to`, with a world that does what it is told.
///
/// The world: the canary is ready at once with capacity for every stage, the router reads back the last weight
/// set, and every effect succeeds. Only the checks' samples come from outside, through `sample`, for the time of
/// each tick. So the timeline is what the checks alone would have made of a rollout over that history: holds,
/// failure and no-data limits, `onNoData`, a comparison's evidence and its per-stage minimum all as live.
public struct Replay: Sendable {
    public var strategy: Strategy
    public var version: String
    public var from: Timestamp
    public var to: Timestamp
    /// Time between two ticks; a live rollout ticks every `analysis.interval`.
    public var step: Duration
    /// An `upstreams` target's pools in the roles they had (they swap on every promotion); nil: as in the strategy.
    public var pools: Pools?

    public init(
        strategy: Strategy, version: String, from: Timestamp, to: Timestamp, step: Duration, pools: Pools? = nil
    ) {
        self.strategy = strategy
        self.version = version
        self.from = from
        self.to = to
        self.step = step
        self.pools = pools
    }

    /// The id and actor of the virtual rollout.
    public static let rolloutID = "replay"
    public static let actor = "replay"

    /// Runs the rollout from `from` until it ends or the next tick would be after `to`. `sample` answers the
    /// checks `decide` asks for at a tick's time, each sample stamped with that time; a check it leaves out
    /// counts as not sampled (live, a provider error is a no-data sample, which `sample` should return instead).
    public func run(
        sample: (_ checks: [Check], _ rollout: Rollout, _ time: Timestamp) async -> [String: Sample]
    ) async -> ReplayTimeline {
        var decision = Rollout.start(
            id: Self.rolloutID, strategy: strategy, revision: 0, version: version, actor: Self.actor, pools: pools,
            now: from)
        var timeline = ReplayTimeline(events: decision.events)
        var world = World()
        world.apply(decision.effects)
        var time = from
        while !decision.rollout.phase.isTerminal, time <= to, step > .zero {
            let checks = decision.rollout.checksToSample(in: strategy)
            let samples = checks.isEmpty ? [:] : await sample(checks, decision.rollout, time)
            timeline.ticks += 1
            timeline.samples += samples.count
            let observations = Observations(samples: samples, routerWeight: world.weight, canary: .ready)
            decision = decide(decision.rollout, strategy: strategy, input: .observed(observations), now: time)
            timeline.events += decision.events
            world.apply(decision.effects)
            timeline.lastTick = time
            time = time + step
        }
        timeline.rollout = decision.rollout
        return timeline
    }

    /// The router and workload of a replay: every effect works, the weight set is the weight read back.
    private struct World {
        var weight = 0
        mutating func apply(_ effects: [Effect]) {
            for case .setWeight(let weight) in effects { self.weight = weight }
        }
    }
}

/// What a replay made of the history: the events a rollout would have had, and how it ended.
public struct ReplayTimeline: Sendable, Hashable {
    /// Every event `decide` emitted, in order, at the virtual time of its tick.
    public var events: [Event]
    /// The rollout's state after the last tick.
    public var rollout: Rollout?
    /// Ticks decided, and samples the checks gave in all.
    public var ticks = 0
    public var samples = 0
    /// The time of the last tick decided.
    public var lastTick: Timestamp?

    public init(events: [Event]) { self.events = events }

    /// How the rollout would have ended, or where it stood at the end of the history.
    public var outcome: ReplayOutcome {
        if let rollback = events.first(where: { $0.type == .rollbackStarted }) {
            return .rolledBack(at: rollback.time, reason: rollbackReason(rollback))
        }
        if let promoting = events.first(where: { $0.type == .promoting }) {
            return .promoted(at: promoting.time)
        }
        let stage = rollout.map { $0.stageIndex } ?? 0
        if let rollout, rollout.phase == .paused,
            let paused = events.last(where: { $0.type == .paused })
        {
            return .paused(at: paused.time, stage: stage, reason: paused.message)
        }
        return .undecided(stage: stage)
    }

    /// "error-rate 0.023 > 0.01" (the breach that started the rollback), else the rollback event's own message.
    private func rollbackReason(_ rollback: Event) -> String {
        guard let rollout, let check = Self.check(in: rollout),
            let state = rollout.checks[check], let sample = state.lastSample
        else { return rollback.message }
        if let explanation = sample.explanation, sample.counts != nil || sample.value == nil {
            return "\(check): \(explanation)"
        }
        guard let value = sample.value else { return rollback.message }
        let breach = events.last(where: { $0.type == .checkBreached && $0.data["check"] == .string(check) })
        let bound: String
        if let max = breach?.data["max"], case .number(let limit) = max, value > limit {
            bound = "> \(Self.number(limit))"
        } else if let min = breach?.data["min"], case .number(let limit) = min, value < limit {
            bound = "< \(Self.number(limit))"
        } else {
            return rollback.message
        }
        return "\(check) \(Self.number(value)) \(bound)"
    }

    /// Up to four significant digits: 0.02346, 0.01, 250.
    static func number(_ value: Double) -> String { String(format: "%.4g", value) }

    /// The check a rollback names, from the rollout's cause.
    private static func check(in rollout: Rollout) -> String? {
        switch rollout.rollbackCause {
        case .breach(let check)?, .noData(let check)?: check
        default: nil
        }
    }
}

/// How a replayed rollout ended.
public enum ReplayOutcome: Sendable, Hashable {
    /// The last stage ended: promotion would have started at this time.
    case promoted(at: Timestamp)
    /// A rollback would have started at this time, for this reason.
    case rolledBack(at: Timestamp, reason: String)
    /// Paused (no data, or a breach with `rollback.automatic: false`) and still paused when the history ended.
    case paused(at: Timestamp, stage: Int, reason: String)
    /// Neither promoted nor rolled back when the history ended.
    case undecided(stage: Int)
}

extension Timestamp {
    /// A time as `sluice replay` takes it: RFC 3339 (`2026-12-07T14:30:00Z`, an offset, fractions allowed), Unix
    /// seconds (`1796653800`, `1796653800.5`), `now`, or `now-DURATION` (`now-1h30m`, Go durations); nil otherwise.
    public init?(argument text: String, now: Timestamp) {
        if text == "now" {
            self = now
            return
        }
        if text.hasPrefix("now-") {
            guard let ago = Duration(go: String(text.dropFirst(4))) else { return nil }
            self = Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - ago.milliseconds)
            return
        }
        if let seconds = Double(text), text.allSatisfy({ $0.isNumber || $0 == "." }), seconds.isFinite {
            self.init(millisecondsSinceEpoch: Int64((seconds * 1000).rounded()))
            return
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) {
            self.init(date)
            return
        }
        formatter.formatOptions = [.withInternetDateTime]
        guard let date = formatter.date(from: text) else { return nil }
        self.init(date)
    }
}
