import Foundation
import SluiceCore
import Testing

/// `spec.bake` (docs/decide.md "Baking"): after promotion the new version serves all traffic while the last stage's
/// threshold checks keep running; a breach swaps the pools back, traffic first. All on a virtual clock.
@Suite struct DecideBakeTests {
    static let pools = Pools(stable: ["a:1"], canary: ["b:1"])

    /// 5 % → 100 %, error-rate everywhere, a 60 s bake.
    static func strategy(
        bake: Duration = .seconds(60), onNoData: NoDataAction = .pause, automatic: Bool = true
    ) -> Strategy {
        var strategy = Fixture.strategy(
            stages: [
                Stage(name: "canary", weight: 5, hold: .seconds(20)),
                Stage(name: "full", weight: 100, hold: .seconds(10)),
            ],
            onNoData: onNoData, automatic: automatic, target: .upstreams(stable: ["a:1"], canary: ["b:1"]))
        strategy.bake = Bake(duration: bake)
        return strategy
    }

    /// A driver whose rollout has just started baking.
    static func baking(_ strategy: Strategy = strategy()) -> Driver {
        var driver = Driver(strategy: strategy)
        driver.passUntil(.baking)
        return driver
    }

    @Test func promotionStartsTheBakeInsteadOfSucceeding() throws {
        let driver = Self.baking()
        let rollout = driver.rollout
        #expect(rollout.phase == .baking)
        #expect(rollout.desiredWeight == 0)
        #expect(rollout.pools == Pools(stable: ["b:1"], canary: ["a:1"]))
        let started = try #require(rollout.bakeStartedAt)
        #expect(rollout.stablePromotedAt != nil)
        let last = try #require(driver.decisions.last)
        #expect(last.events.map(\.type) == [.bakeStarted])
        #expect(last.events[0].data["duration"] == .string("1m"))
        #expect(last.events[0].data["checks"] == .array([.string("error-rate")]))
        #expect(last.events[0].time == started)
        #expect(!driver.allEvents.contains(.promoted))
        #expect(rollout.checksToSample(in: driver.strategy).map(\.name) == ["error-rate"])
        #expect(rollout.bakeRemaining(in: driver.strategy, now: started + .seconds(25)) == .seconds(35))
        #expect(rollout.bakeRemaining(in: driver.strategy, now: started + .seconds(90)) == .zero)
    }

    @Test func aBakeWithPassingChecksSucceedsOnTheFirstPassingTickAfterItsDuration() throws {
        var driver = Self.baking()
        let started = try #require(driver.rollout.bakeStartedAt)
        for second in stride(from: 10, through: 50, by: 10) {
            let decision = driver.tick(["error-rate": 0.001])
            #expect(decision.rollout.phase == .baking, "at +\(second)s")
            #expect(decision.effects == [])
        }
        let done = driver.tick(["error-rate": 0.001])
        #expect(driver.now == started + .seconds(60))
        #expect(done.rollout.phase == .succeeded)
        #expect(done.effects == [])
        #expect(done.events.map(\.type) == [.promoted])
        #expect(done.events[0].message.contains("the bake of 1m passed"))
        #expect(done.events[0].data["bake"] == .string("1m"))
        #expect(done.rollout.pools == Pools(stable: ["b:1"], canary: ["a:1"]))
    }

    @Test func aBreachDuringTheBakeSwapsThePoolsBackTrafficFirst() throws {
        var driver = Self.baking()
        driver.tick(["error-rate": 0.001])
        let breach = driver.tick(["error-rate": 0.2])
        #expect(breach.rollout.phase == .rollingBack)
        #expect(breach.rollout.pools == Self.pools)
        #expect(breach.rollout.rollbackCause == .breach(check: "error-rate"))
        #expect(breach.effects == [.setWeight(0), .scaleDownCanary, .finalizeTraffic])
        #expect(breach.events.map(\.type) == [.checkBreached, .rollbackStarted])
        let started = breach.events[1]
        #expect(started.data["from"] == .string("Baking"))
        #expect(started.data["poolsSwappedBack"] == .bool(true))
        #expect(started.data["stable"] == .array([.string("a:1")]))
        let done = driver.tick(["error-rate": 0.2])
        #expect(done.rollout.phase == .rolledBack)
        #expect(done.events.map(\.type) == [.rolledBack])
        #expect(done.rollout.pools == Self.pools)
    }

    @Test func noDataNeverEndsTheBakeAndPausesNothing() throws {
        var driver = Self.baking()
        let started = try #require(driver.rollout.bakeStartedAt)
        for _ in 0..<8 { driver.tick(["error-rate": nil]) }
        #expect(driver.now == started + .seconds(80))
        #expect(driver.rollout.phase == .baking)
        #expect(driver.rollout.pause == nil)
        let bakeEvents = driver.decisions.suffix(8).flatMap(\.events).map(\.type)
        #expect(bakeEvents == [.checkNoData])
        let done = driver.tick(["error-rate": 0.001])
        #expect(done.rollout.phase == .succeeded)
        #expect(done.events.map(\.type) == [.checkRecovered, .promoted])
    }

    @Test func noDataWithOnNoDataRollbackRollsTheBakeBack() {
        var driver = Self.baking(Self.strategy(onNoData: .rollback))
        driver.tick(["error-rate": nil])
        driver.tick(["error-rate": nil])
        #expect(driver.rollout.phase == .baking)
        let third = driver.tick(["error-rate": nil])
        #expect(third.rollout.phase == .rollingBack)
        #expect(third.rollout.rollbackCause == .noData(check: "error-rate"))
        #expect(third.rollout.pools == Self.pools)
        #expect(third.effects.first == .setWeight(0))
    }

    @Test func aBreachWithAutomaticRollbackOffKeepsBakingUntilAPass() {
        var driver = Self.baking(Self.strategy(automatic: false))
        for _ in 0..<7 { driver.tick(["error-rate": 0.2]) }
        #expect(driver.rollout.phase == .baking)
        #expect(driver.rollout.pause == nil)
        #expect(!driver.allEvents.contains(.paused))
        #expect(driver.tick(["error-rate": 0.001]).rollout.phase == .succeeded)
    }

    @Test func aManualRollbackDuringTheBakeSwapsThePoolsBack() {
        var driver = Self.baking()
        driver.tick(["error-rate": 0.001])
        let decision = driver.command(.rollback(actor: "alice", reason: "support tickets"))
        #expect(decision.rejection == nil)
        #expect(decision.rollout.phase == .rollingBack)
        #expect(decision.rollout.pools == Self.pools)
        #expect(decision.effects == [.setWeight(0), .scaleDownCanary, .finalizeTraffic])
        #expect(decision.events.map(\.type) == [.rollbackStarted])
        #expect(decision.events[0].actor == "alice")
        #expect(decision.events[0].data["from"] == .string("Baking"))
        #expect(driver.tick([:]).rollout.phase == .rolledBack)
    }

    @Test func promoteDuringTheBakeEndsItEarly() {
        var driver = Self.baking()
        driver.tick(["error-rate": 0.001])
        let decision = driver.command(.promote(actor: "rel", full: false))
        #expect(decision.rejection == nil)
        #expect(decision.rollout.phase == .succeeded)
        #expect(decision.effects == [])
        #expect(decision.events.map(\.type) == [.promoted])
        #expect(decision.events[0].actor == "rel")
        #expect(decision.events[0].data["bakeEndedBy"] == .string("rel"))
        #expect(decision.events[0].data["bakeRemaining"] == .string("50s"))
        #expect(decision.rollout.pools == Pools(stable: ["b:1"], canary: ["a:1"]))
    }

    @Test func supersedeDuringTheBakeKeepsTheBakedVersion() {
        var driver = Self.baking()
        let decision = driver.command(.supersede(actor: "ci", by: "a new rollout of v3"))
        #expect(decision.rejection == nil)
        #expect(decision.rollout.phase == .succeeded)
        #expect(decision.events.map(\.type) == [.promoted])
        #expect(decision.rollout.pools == Pools(stable: ["b:1"], canary: ["a:1"]))
    }

    @Test func pauseAndResumeAreRefusedWhileBaking() {
        var driver = Self.baking()
        #expect(driver.command(.pause(actor: "a")).rejection != nil)
        #expect(driver.command(.resume(actor: "a")).rejection != nil)
        #expect(driver.rollout.phase == .baking)
    }

    @Test func driftDuringTheBakeIsSetBackToAllTrafficOnTheNewVersion() {
        var driver = Self.baking()
        driver.world.routerWeight = 30
        let decision = driver.tick(["error-rate": 0.001])
        #expect(decision.effects == [.setWeight(0)])
        #expect(decision.events.map(\.type) == [.driftDetected])
        #expect(decision.rollout.phase == .baking)
    }

    @Test func withoutABakePromotionSucceedsAsBefore() {
        var driver = Driver(strategy: Self.strategy().with(bake: nil))
        driver.passUntil(.succeeded)
        #expect(driver.rollout.phase == .succeeded)
        #expect(!driver.allEvents.contains(.bakeStarted))
        #expect(driver.rollout.bakeStartedAt == nil)
    }
}

extension Strategy {
    fileprivate func with(bake: Bake?) -> Strategy {
        var copy = self
        copy.bake = bake
        return copy
    }
}

/// `spec.bake` in the strategy file: read, validated with line:column, in canonical JSON.
let bakeStrategy = """
    apiVersion: sluice.dev/v1
    kind: Strategy
    metadata:
      name: shop
    spec:
      target:
        upstreams: {stable: ["10.0.0.1:80"], canary: ["10.0.0.2:80"]}
      traffic:
        caddy: {adminURL: "http://127.0.0.1:2019", handlerID: lb}
      stages:
        - {name: canary, weight: 5, hold: 1m}
        - {name: full, weight: 100}
      analysis:
        interval: 10s
        providers:
          prom:
            prometheus: {address: "http://prometheus:9090"}
        checks:
          - {name: error-rate, query: errors, max: 0.01}
      bake:
        duration: 10m

    """

/// Invalid variants of `bakeStrategy` (run by StrategyValidationTests.invalidDocument).
let bakeCases: [InvalidCase] = [
    InvalidCase(in: bakeStrategy, "duration: 10m", "duration: 5s",
        "21:15: spec.bake.duration: must be at least 10s, got 5s"),
    InvalidCase(in: bakeStrategy, "duration: 10m", "duration: soon",
        "21:15: spec.bake.duration: \"soon\" is not a duration: use a number and a unit (ms, s, m, h), e.g. 90s, 30m, 1h30m"),
    InvalidCase(in: bakeStrategy, "  bake:\n    duration: 10m\n", "  bake: {}\n",
        "20:9: spec.bake: missing required key \"duration\""),
    InvalidCase(in: bakeStrategy,
        "    upstreams: {stable: [\"10.0.0.1:80\"], canary: [\"10.0.0.2:80\"]}\n  traffic:\n    caddy: {adminURL: \"http://127.0.0.1:2019\", handlerID: lb}\n",
        "    deployment: shop\n  traffic:\n    gatewayAPI: {httpRoute: shop, stableService: shop, canaryService: shop-canary}\n",
        "21:5: spec.bake: bake needs an upstreams target: after promotion Sluice can swap pools back, but it does not keep a Deployment's previous pod template to restore"),
    InvalidCase(in: bakeStrategy, "    checks:\n      - {name: error-rate, query: errors, max: 0.01}\n", "",
        "19:5: spec.bake: a bake needs a threshold check (max or min) in the last stage: comparisons need a baseline, and after promotion no other version takes traffic"),
]

@Suite struct StrategyBakeTests {
    @Test func bakeIsReadAndSurvivesCanonicalJSON() throws {
        let strategy = try StrategyLoader.loadOne(yaml: bakeStrategy, file: "t.yaml")
        #expect(strategy.bake == Bake(duration: .seconds(600)))
        #expect(strategy.bakeChecks.map(\.name) == ["error-rate"])
        let json = strategy.canonicalJSON()
        #expect(json.contains("\"bake\""))
        #expect(try StrategyLoader.loadOne(yaml: json, file: "c.json") == strategy)
        let without = try StrategyLoader.loadOne(
            yaml: bakeStrategy.replacingOccurrences(of: "  bake:\n    duration: 10m\n", with: ""), file: "t.yaml")
        #expect(without.bake == nil)
        #expect(without.bakeChecks.isEmpty)
        #expect(!without.canonicalJSON().contains("bake"))
    }

    @Test func schemaDescribesBake() {
        #expect(StrategySchema.json.contains("\"bake\""))
    }
}
