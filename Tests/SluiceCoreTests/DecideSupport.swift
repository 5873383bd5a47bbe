import SluiceCore

/// Shared fixtures for the `decide` tests: strategies as Swift values, a virtual clock in seconds, samples.
enum Fixture {
    static let t0 = Timestamp(millisecondsSinceEpoch: 1_795_000_000_000)

    static func at(_ seconds: Int) -> Timestamp { t0 + .seconds(seconds) }

    static let errorRate = Check(name: "error-rate", provider: "prom", query: "errors", max: 0.01)
    static let availability = Check(name: "availability", provider: "prom", query: "up", min: 0.999)
    static let latency = Check(name: "latency", provider: "prom", query: "p99", max: 0.2)

    /// 5 % → 25 % → 100 %, each held 60 s; error-rate everywhere, latency in the 25 % stage only.
    static func strategy(
        stages: [Stage]? = nil, checks: [Check] = [errorRate], failureLimit: Int = 1, noDataLimit: Int = 3,
        onNoData: NoDataAction = .pause, automatic: Bool = true, target: Target? = nil
    ) -> Strategy {
        Strategy(
            name: "checkout", namespace: "shop",
            target: target ?? .deployment(name: "checkout", container: nil),
            traffic: .caddy(adminURL: "http://127.0.0.1:2019", handlerID: "checkout"),
            stages: stages ?? [
                Stage(name: "canary", weight: 5, hold: .seconds(60)),
                Stage(name: "pilot", weight: 25, hold: .seconds(60), checks: [latency]),
                Stage(name: "full", weight: 100, hold: .seconds(60)),
            ],
            analysis: Analysis(
                interval: .seconds(10), failureLimit: failureLimit, noDataLimit: noDataLimit, onNoData: onNoData,
                checks: checks),
            rollback: RollbackPolicy(automatic: automatic))
    }

    /// A driver of `strategy(...)` whose first stage's weight was just read back: its hold starts now.
    static func driverWithFirstStageConfirmed(failureLimit: Int = 1, noDataLimit: Int = 3) -> Driver {
        var driver = Driver(strategy: strategy(failureLimit: failureLimit, noDataLimit: noDataLimit))
        driver.confirmFirstStage()
        return driver
    }

    static func sample(_ check: String, _ value: Double?, at time: Timestamp, reason: String? = nil) -> Sample {
        Sample(check: check, time: time, value: value, verdict: value == nil ? .noData : .pass, reason: reason)
    }

    /// Observations at `time` with one sample per (check, value); nil values are no-data.
    static func observed(
        _ values: [String: Double?] = [:], router: Int?, canary: CanaryStatus? = .ready, at time: Timestamp,
        failed: [EffectFailure] = []
    ) -> DecisionInput {
        var samples: [String: Sample] = [:]
        for (name, value) in values {
            samples[name] = sample(name, value, at: time, reason: value == nil ? "empty result" : nil)
        }
        return .observed(Observations(samples: samples, routerWeight: router, canary: canary, failedEffects: failed))
    }
}

/// A tiny outside world that carries out effects the way a healthy controller would: the router takes the
/// weight it is given, the canary becomes ready on the tick after it is deployed.
struct World {
    var routerWeight = 0
    var canaryReady = false
    var canaryScaledDown = false
    var stableVersion = "v1"
    /// What the stable ran before the last promotion (restored by a Deployment bake's rollback).
    var previousStableVersion: String?
    /// The canary runs what the stable ran before the promotion (a Deployment bake's rollback).
    var canaryRunsPrevious = false
    /// What the router says of the canary's members on the next tick (nil: it has no view).
    var routerHealth: RouterCanaryHealth?

    mutating func run(_ effects: [Effect]) {
        for effect in effects {
            switch effect {
            case .deployCanary: canaryReady = true
            case .setWeight(let weight): routerWeight = weight
            case .promoteStable(let version):
                if stableVersion != version { previousStableVersion = stableVersion }
                stableVersion = version
            case .deployPreviousCanary:
                canaryReady = true
                canaryRunsPrevious = true
            case .restoreStable: stableVersion = previousStableVersion ?? stableVersion
            case .scaleDownCanary: canaryScaledDown = true
            case .finalizeTraffic: break
            }
        }
    }
}

/// Drives one rollout through `decide` against a `World`, one tick at a time, keeping every decision.
struct Driver {
    var strategy: Strategy
    var rollout: Rollout
    var world = World()
    var now: Timestamp
    var decisions: [Decision] = []

    init(strategy: Strategy, version: String = "v2", at start: Timestamp = Fixture.t0) {
        self.strategy = strategy
        self.now = start
        let first = Rollout.start(
            id: "r-1", strategy: strategy, revision: 1, version: version, actor: "ci", pools: nil, now: start)
        rollout = first.rollout
        world.run(first.effects)
        decisions = [first]
    }

    /// One tick `seconds` later, with the given check values (nil = no-data).
    @discardableResult
    mutating func tick(after seconds: Int = 10, _ values: [String: Double?] = [:]) -> Decision {
        tick(by: .seconds(seconds), values)
    }

    /// One tick `interval` later, with the given check values (nil = no-data with `reason`).
    @discardableResult
    mutating func tick(by interval: Duration, _ values: [String: Double?], reason: String = "empty result")
        -> Decision
    {
        now = now + interval
        var samples: [String: Sample] = [:]
        for (name, value) in values {
            samples[name] = Fixture.sample(name, value, at: now, reason: value == nil ? reason : nil)
        }
        return tick(at: now, samples: samples)
    }

    /// One tick at `time` with samples made for it (`samples(time)`), e.g. a comparison's counts.
    @discardableResult
    mutating func tick(after seconds: Int = 10, samples: (Timestamp) -> [Sample]) -> Decision {
        now = now + .seconds(seconds)
        return tick(at: now, samples: Dictionary(uniqueKeysWithValues: samples(now).map { ($0.check, $0) }))
    }

    private mutating func tick(at now: Timestamp, samples: [String: Sample]) -> Decision {
        let observations = Observations(
            samples: samples, routerWeight: world.routerWeight,
            canary: world.canaryReady ? .ready : .progressing("starting"), routerHealth: world.routerHealth)
        return decide(.observed(observations))
    }

    @discardableResult
    mutating func command(_ command: Command) -> Decision {
        decide(.command(command))
    }

    private mutating func decide(_ input: DecisionInput) -> Decision {
        let decision = SluiceCore.decide(rollout, strategy: strategy, input: input, now: now)
        rollout = decision.rollout
        world.run(decision.effects)
        decisions.append(decision)
        return decision
    }

    /// Start, canary ready, first stage weight read back: the hold of stage 0 runs from `now`.
    mutating func confirmFirstStage() {
        tick()
        tick()
    }

    /// Ticks with every check passing until `phase` is reached, at most `limit` ticks.
    mutating func passUntil(_ phase: Phase, limit: Int = 100) {
        for _ in 0..<limit where rollout.phase != phase {
            let names = strategy.checks(inStage: rollout.stageIndex).map(\.name)
            tick(Dictionary(uniqueKeysWithValues: names.map { ($0, Optional(passing($0))) }))
        }
    }

    /// A value that passes the check named `name`.
    func passing(_ name: String) -> Double {
        let check = strategy.checks(inStage: rollout.stageIndex).first { $0.name == name }
        if let min = check?.min { return min + 0.0001 }
        return 0
    }

    var allEvents: [EventType] { decisions.flatMap(\.events).map(\.type) }
}
