import SluiceCore
import SluiceTestSupport

/// The seed of a property run: `SLUICE_PROPERTY_SEED` when set (to replay a failure), else a fresh one.
enum PropertySeed {
    static func resolve(_ name: String) -> UInt64 {
        if let text = environment("SLUICE_PROPERTY_SEED"), let seed = UInt64(text) {
            print("\(name): seed \(seed) (from SLUICE_PROPERTY_SEED)")
            return seed
        }
        let seed = UInt64.random(in: 0...UInt64.max)
        print("\(name): seed \(seed) (replay with SLUICE_PROPERTY_SEED=\(seed))")
        return seed
    }

    private static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Random but valid strategies and inputs for the property tests.
struct Generator {
    var rng: SplitMix64

    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }

    static let checkPool = [
        Check(name: "error-rate", provider: "p", query: "q1", max: 0.01),
        Check(name: "availability", provider: "p", query: "q2", min: 0.999),
        Check(name: "latency", provider: "p", query: "q3", max: 0.2, min: 0.001),
    ]
    static let stageCheck = Check(name: "stage-only", provider: "p", query: "q4", max: 5)

    mutating func strategy() -> Strategy {
        var weights = Set<Int>()
        let count = int(1...4)
        while weights.count < count - 1 { weights.insert(int(1...99)) }
        let sorted = weights.sorted() + [100]
        let stages = sorted.enumerated().map { index, weight in
            let pause = chance(0.2)
            return Stage(
                name: "s\(index)", weight: weight, hold: pause ? nil : .seconds(int(1...12) * 10), pause: pause,
                checks: chance(0.2) ? [Self.stageCheck] : [])
        }
        let checks = Self.checkPool.filter { _ in chance(0.6) }
        let target: Target =
            chance(0.3)
            ? .upstreams(stable: ["10.0.0.1:80"], canary: ["10.0.0.2:80"]) : .deployment(name: "app", container: nil)
        return Strategy(
            name: "app", target: target, traffic: .caddy(adminURL: "http://127.0.0.1:2019", handlerID: "app"),
            stages: stages,
            analysis: Analysis(
                failureLimit: int(1...3), noDataLimit: int(1...4), onNoData: chance(0.5) ? .pause : .rollback,
                checks: checks),
            rollback: RollbackPolicy(automatic: chance(0.6)),
            bake: chance(0.4) ? Bake(duration: .seconds(int(1...6) * 10)) : nil)
    }

    /// A value for `check`: mostly passing, sometimes breaching, sometimes no data at all.
    mutating func sample(for check: Check, at time: Timestamp, passBias: Double) -> Sample {
        let roll = Double.random(in: 0..<1, using: &rng)
        if roll < 0.15 {
            let kind = int(0...3)
            let value: Double? = [nil, .nan, .infinity, -.infinity][kind]
            // Some providers may claim a pass without a value; decide must not believe it.
            return Sample(
                check: check.name, time: time, value: value, verdict: chance(0.5) ? .pass : .noData,
                reason: "no data \(kind)")
        }
        let pass = roll < 0.15 + passBias
        let value: Double
        if pass {
            value = check.min.map { $0 + 0.0005 } ?? 0
        } else {
            value = check.max.map { $0 * 2 + 1 } ?? ((check.min ?? 1) - 0.5)
        }
        return Sample(check: check.name, time: time, value: value, verdict: chance(0.5) ? .pass : .breach)
    }

    mutating func command() -> Command {
        // Rollbacks end a run, so they are rarer than the commands that steer it.
        switch int(0...19) {
        case 0...4: .promote(actor: "alice", full: chance(0.3))
        case 5...10: .pause(actor: "bob")
        case 11...17: .resume(actor: "bob")
        case 18: .rollback(actor: "carol", reason: "random")
        default: .supersede(actor: "ci", by: "r-next")
        }
    }
}

/// The outside world in a property run: applies effects in order, sometimes failing one (which stops the
/// rest, as the controller does), sometimes drifting, and reports what it sees. A failed scale-up leaves the
/// old canary ready at its old capacity, the trap that "capacity before traffic" must not fall into.
struct FlakyWorld {
    var routerWeight = 0
    var canary: CanaryStatus = .progressing("starting")
    var failed: [EffectFailure] = []
    /// The weight the canary is being scaled for, and the weight it is ready for.
    var capacity = 0
    var readyCapacity = 0
    /// Whether observations carry `canaryCapacity` (some workloads cannot tell).
    var reportsCapacity: Bool

    init(reportsCapacity: Bool) { self.reportsCapacity = reportsCapacity }

    mutating func run(_ effects: [Effect], _ gen: inout Generator) {
        guard !effects.isEmpty else { return }  // failures stay reported until effects run again
        failed = []
        for effect in effects {
            if gen.chance(0.08) {
                failed = [EffectFailure(effect: effect, message: "injected failure")]
                return
            }
            switch effect {
            case .deployCanary(_, let weight):
                capacity = max(capacity, weight)
                canary = gen.chance(0.7) ? .ready : .progressing("starting")
                if canary == .ready { readyCapacity = capacity }
            case .deployPreviousCanary:
                capacity = 100
                canary = gen.chance(0.7) ? .ready : .progressing("starting")
                if canary == .ready { readyCapacity = capacity }
            case .setWeight(let weight): routerWeight = weight
            case .scaleDownCanary:
                capacity = 0
                readyCapacity = 0
            case .promoteStable, .restoreStable, .finalizeTraffic: break
            }
        }
    }

    mutating func observe(_ gen: inout Generator) -> Observations {
        if case .progressing = canary, gen.chance(0.5) {
            canary = .ready
            readyCapacity = capacity
        }
        if gen.chance(0.03) { routerWeight = gen.int(0...100) }  // someone edits the route by hand
        let router: Int? = gen.chance(0.05) ? nil : routerWeight
        var status: CanaryStatus? = gen.chance(0.05) ? nil : canary
        if gen.chance(0.005) { status = .failed("CrashLoopBackOff") }
        return Observations(
            routerWeight: router, canary: status, failedEffects: failed,
            canaryCapacity: reportsCapacity ? readyCapacity : nil)
    }
}
