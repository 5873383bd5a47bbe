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

    // MARK: a Deployment's bake: the promotion is undone traffic first (PromotionUndo)

    static func deploymentStrategy() -> Strategy {
        var strategy = Self.strategy()
        strategy.target = .deployment(name: "checkout", container: nil)
        return strategy
    }

    @Test func aBreachDuringADeploymentsBakeRunsThePreviousTemplateAsTheCanaryFirst() throws {
        var driver = Self.baking(Self.deploymentStrategy())
        #expect(driver.world.stableVersion == "v2")
        #expect(driver.rollout.pools == nil)
        let breach = driver.tick(["error-rate": 0.2])
        #expect(breach.rollout.phase == .rollingBack)
        #expect(breach.rollout.undo == .previousCanary)
        #expect(breach.rollout.desiredWeight == 0)
        // Nothing moves traffic yet: the new version keeps it until the previous one can take it.
        #expect(breach.effects == [.deployPreviousCanary(promoted: "v2")])
        #expect(breach.events.map(\.type) == [.checkBreached, .rollbackStarted])
        #expect(breach.events[1].data["from"] == .string("Baking"))
        #expect(breach.events[1].data["undo"] == .string("PreviousCanary"))
        #expect(breach.events[1].message.contains("takes all traffic first"))

        // Until the canary (running the previous template) is ready, nothing else happens.
        driver.world.canaryReady = false
        let waiting = driver.tick(["error-rate": 0.2])
        #expect(waiting.effects == [])
        #expect(waiting.events == [])
        #expect(waiting.rollout.undo == .previousCanary)

        driver.world.canaryReady = true
        let ready = driver.tick([:])
        #expect(ready.rollout.undo == .previousTraffic)
        #expect(ready.rollout.desiredWeight == 100)
        #expect(ready.effects == [.setWeight(100)])
        #expect(ready.events.map(\.type) == [.canaryDeployed])
        #expect(driver.world.stableVersion == "v2", "the stable is not touched before traffic left it")

        let shifted = driver.tick([:])
        #expect(shifted.rollout.undo == .restoreStable)
        #expect(shifted.effects == [.restoreStable(promoted: "v2")])
        #expect(shifted.events.map(\.type) == [.trafficShifted])
        #expect(shifted.events[0].weight == 100)
        #expect(driver.world.stableVersion == "v1")

        let restored = driver.tick([:])
        #expect(restored.rollout.undo == nil)
        #expect(restored.rollout.desiredWeight == 0)
        #expect(restored.effects == [.setWeight(0), .scaleDownCanary, .finalizeTraffic])
        #expect(restored.events.map(\.type) == [.stableRestored])
        #expect(restored.events[0].data["inPlace"] == .bool(false))

        let done = driver.tick([:])
        #expect(done.rollout.phase == .rolledBack)
        #expect(done.events.map(\.type) == [.rolledBack])
        #expect(driver.world.routerWeight == 0)
        #expect(driver.world.canaryScaledDown)
    }

    /// A Deployment's bake that has just breached (its rollback undoes the promotion), and the next tick's time.
    static func undoStarted() -> (driver: Driver, breach: Decision, now: Timestamp) {
        var driver = Self.baking(Self.deploymentStrategy())
        let breach = driver.tick(["error-rate": 0.2])
        return (driver, breach, driver.now + .seconds(10))
    }

    @Test func eachUndoStepIsAskedForAgainUntilItIsReadBack() {
        let (driver, breach, now) = Self.undoStarted()
        let failedDeploy = decide(
            breach.rollout, strategy: driver.strategy,
            input: Fixture.observed(
                router: 0, canary: .ready, at: now,
                failed: [EffectFailure(effect: .deployPreviousCanary(promoted: "v2"), message: "conflict")]),
            now: now)
        #expect(failedDeploy.effects == [.deployPreviousCanary(promoted: "v2")])
        #expect(failedDeploy.rollout.undo == .previousCanary)

        var traffic = breach.rollout
        traffic.undo = .previousTraffic
        traffic.desiredWeight = 100
        let notYet = decide(traffic, strategy: driver.strategy, input: Fixture.observed(router: 5, at: now), now: now)
        #expect(notYet.effects == [.setWeight(100)])
        #expect(notYet.rollout.undo == .previousTraffic)

        var restoring = traffic
        restoring.undo = .restoreStable
        let failedRestore = decide(
            restoring, strategy: driver.strategy,
            input: Fixture.observed(
                router: 100, at: now,
                failed: [EffectFailure(effect: .restoreStable(promoted: "v2"), message: "timed out")]),
            now: now)
        #expect(failedRestore.effects == [.restoreStable(promoted: "v2")])
        #expect(failedRestore.rollout.undo == .restoreStable)
        #expect(failedRestore.rollout.desiredWeight == 100)
    }

    @Test func aPreviousTemplateThatCannotRunAsTheCanaryIsRestoredInPlace() {
        let (driver, breach, now) = Self.undoStarted()
        let failed = decide(
            breach.rollout, strategy: driver.strategy,
            input: Fixture.observed(router: 0, canary: .failed("ImagePullBackOff"), at: now), now: now)
        #expect(failed.rollout.undo == .restoreInPlace)
        #expect(failed.rollout.desiredWeight == 0)
        #expect(failed.effects == [.restoreStable(promoted: "v2")])
        #expect(failed.events.map(\.type) == [.effectFailed])
        #expect(failed.events[0].message.contains("restoring the stable Deployment in place"))
        // A restore that fails is asked for again, still in place: traffic stays on stable.
        let retried = decide(
            failed.rollout, strategy: driver.strategy,
            input: Fixture.observed(
                router: 0, at: now + .seconds(5),
                failed: [EffectFailure(effect: .restoreStable(promoted: "v2"), message: "timed out")]),
            now: now + .seconds(5))
        #expect(retried.effects == [.restoreStable(promoted: "v2")])
        #expect(retried.rollout.undo == .restoreInPlace)
        #expect(retried.rollout.desiredWeight == 0)
        let restored = decide(
            failed.rollout, strategy: driver.strategy, input: Fixture.observed(router: 0, at: now + .seconds(10)),
            now: now + .seconds(10))
        #expect(restored.events.map(\.type) == [.stableRestored])
        #expect(restored.events[0].data["inPlace"] == .bool(true))
        #expect(restored.effects.first == .setWeight(0))
    }

    @Test func aManualRollbackDuringADeploymentsBakeUndoesThePromotionToo() {
        var driver = Self.baking(Self.deploymentStrategy())
        let decision = driver.command(.rollback(actor: "alice", reason: "support tickets"))
        #expect(decision.rejection == nil)
        #expect(decision.rollout.undo == .previousCanary)
        #expect(decision.effects == [.deployPreviousCanary(promoted: "v2")])
        #expect(decision.events[0].actor == "alice")
    }

    @Test func aSupersedeDuringTheUndoLetsItFinish() {
        var driver = Self.baking(Self.deploymentStrategy())
        driver.tick(["error-rate": 0.2])
        let decision = driver.command(.supersede(actor: "ci", by: "a new rollout of v3"))
        #expect(decision.rejection == nil)
        #expect(decision.effects == [], "no cleanup: it would scale down the canary about to take the traffic")
        #expect(decision.rollout.undo == .previousCanary)
        #expect(driver.tick([:]).effects == [.setWeight(100)])
    }

    @Test func aDeploymentsRollbackBeforePromotionIsUnchanged() {
        var driver = Driver(strategy: Self.deploymentStrategy())
        driver.confirmFirstStage()
        let decision = driver.command(.rollback(actor: "alice", reason: "no"))
        #expect(decision.rollout.undo == nil)
        #expect(decision.effects == [.setWeight(0), .scaleDownCanary, .finalizeTraffic])
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

    @Test func aDeploymentTargetMayBake() throws {
        let yaml = bakeStrategy.replacingOccurrences(
            of: "    upstreams: {stable: [\"10.0.0.1:80\"], canary: [\"10.0.0.2:80\"]}\n  traffic:\n"
                + "    caddy: {adminURL: \"http://127.0.0.1:2019\", handlerID: lb}\n",
            with: "    deployment: shop\n  traffic:\n"
                + "    gatewayAPI: {httpRoute: shop, stableService: shop, canaryService: shop-canary}\n")
        #expect(yaml != bakeStrategy)
        let strategy = try StrategyLoader.loadOne(yaml: yaml, file: "t.yaml")
        #expect(strategy.target == .deployment(name: "shop", container: nil))
        #expect(strategy.bake == Bake(duration: .seconds(600)))
    }

    @Test func schemaDescribesBake() {
        #expect(StrategySchema.json.contains("\"bake\""))
    }
}
