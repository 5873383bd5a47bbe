import SluiceCore
import Testing

/// An `upstreams` strategy with a health check written one key a line, so each case below changes one line and
/// knows the line and column of the error it causes.
let healthStrategy = """
    apiVersion: sluice.dev/v1
    kind: Strategy
    metadata:
      name: shop
    spec:
      target:
        upstreams:
          stable: ["10.0.0.1:80"]
          canary: ["10.0.0.2:80", "10.0.0.3:80"]
          health:
            path: /healthz
            expect: 204
            timeout: 1s
            version: {header: X-Version}
      traffic:
        caddy: {adminURL: "http://127.0.0.1:2019", handlerID: lb}
      stages:
        - {name: canary, weight: 5, hold: 1m}
        - {name: full, weight: 100}

    """

/// Invalid variants of `healthStrategy`.
let healthCases: [InvalidCase] = [
    InvalidCase(in: healthStrategy, "path: /healthz", "path: healthz",
        "11:15: spec.target.upstreams.health.path: \"healthz\" is not a path: start it with \"/\", e.g. /healthz"),
    InvalidCase(in: healthStrategy, "path: /healthz", "path: \"/health z\"",
        "11:15: spec.target.upstreams.health.path: \"/health z\" is not a valid path: no spaces or control characters"),
    InvalidCase(in: healthStrategy, "        path: /healthz\n", "",
        "11:9: spec.target.upstreams.health: missing required key \"path\""),
    InvalidCase(in: healthStrategy, "path: /healthz", "path: /healthz\n        scheme: ftp",
        "12:17: spec.target.upstreams.health.scheme: must be http or https, got \"ftp\""),
    InvalidCase(in: healthStrategy, "expect: 204", "expect: 600",
        "12:17: spec.target.upstreams.health.expect: must be between 100 and 599, got 600"),
    InvalidCase(in: healthStrategy, "expect: 204", "expect: \"204\"",
        "12:17: spec.target.upstreams.health.expect: expected an integer, got a string (\"204\")"),
    InvalidCase(in: healthStrategy, "expect: 204", "expct: 204",
        "12:9: spec.target.upstreams.health.expct: unknown key \"expct\"; did you mean \"expect\"?"),
    InvalidCase(in: healthStrategy, "timeout: 1s", "timeout: 30s",
        "13:18: spec.target.upstreams.health.timeout: must be at most 10s, got 30s"),
    InvalidCase(in: healthStrategy, "timeout: 1s", "timeout: soon",
        "13:18: spec.target.upstreams.health.timeout: \"soon\" is not a duration: use a number and a unit (ms, s, m, h), e.g. 90s, 30m, 1h30m"),
    InvalidCase(in: healthStrategy, "timeout: 1s", "timeout: 1s\n        failureThreshold: 0",
        "14:27: spec.target.upstreams.health.failureThreshold: must be between 1 and 100, got 0"),
    InvalidCase(in: healthStrategy, "{header: X-Version}", "{header: \"X Version\"}",
        "14:27: spec.target.upstreams.health.version.header: \"X Version\" is not a header name: use letters, digits and \"-\", e.g. X-Version"),
    InvalidCase(in: healthStrategy, "{header: X-Version}", "{header: X-Version, jsonPath: version}",
        "14:38: spec.target.upstreams.health.version.jsonPath: version is read from a header or a jsonPath, not both"),
    InvalidCase(in: healthStrategy, "{header: X-Version}", "{}",
        "14:18: spec.target.upstreams.health.version: needs one of \"header\" (e.g. X-Version) or \"jsonPath\" (e.g. version)"),
    InvalidCase(in: healthStrategy, "{header: X-Version}", "{jsonPath: build..version}",
        "14:29: spec.target.upstreams.health.version.jsonPath: \"build..version\" is not a dotted path such as version or build.version"),
    InvalidCase(in: healthStrategy, "{header: X-Version}", "{body: version}",
        "14:18: spec.target.upstreams.health.version: needs one of \"header\" (e.g. X-Version) or \"jsonPath\" (e.g. version)",
        "14:19: spec.target.upstreams.health.version.body: unknown key \"body\"; expected \"header\" or \"jsonPath\""),
    InvalidCase(in: healthStrategy, "      health:\n        path: /healthz\n", "      health: /healthz\n      h:\n        path: /healthz\n",
        "10:15: spec.target.upstreams.health: expected a mapping, got a string (\"/healthz\")",
        "11:7: spec.target.upstreams.h: unknown key \"h\"; expected \"stable\", \"canary\" or \"health\""),
]

@Suite struct StrategyHealthTests {
    @Test func healthCheckIsReadWithItsDefaults() throws {
        let result = StrategyLoader.load(yaml: healthStrategy, file: "t.yaml")
        #expect(result.errors == [])
        let strategy = try #require(result.strategies.first)
        #expect(
            strategy.target
                == .upstreams(
                    stable: ["10.0.0.1:80"], canary: ["10.0.0.2:80", "10.0.0.3:80"],
                    health: HealthCheck(
                        scheme: "http", path: "/healthz", expect: 204, timeout: .seconds(1),
                        version: .header("X-Version"), failureThreshold: 3)))

        let minimal = StrategyLoader.load(
            yaml: healthStrategy.replacingOccurrences(
                of: "        expect: 204\n        timeout: 1s\n        version: {header: X-Version}\n",
                with: "        scheme: https\n        version: {jsonPath: build.version}\n"),
            file: "t.yaml")
        #expect(minimal.errors == [])
        guard case .upstreams(_, _, let health)? = minimal.strategies.first?.target else {
            Issue.record("not an upstreams target")
            return
        }
        #expect(
            health
                == HealthCheck(
                    scheme: "https", path: "/healthz", expect: 200, timeout: .seconds(2),
                    version: .jsonPath("build.version"), failureThreshold: 3))
    }

    @Test func canonicalFormWritesTheDefaultsAndReadsBackTheSame() throws {
        let strategy = try #require(StrategyLoader.load(yaml: healthStrategy, file: "t.yaml").strategies.first)
        let json = strategy.canonicalJSON()
        #expect(json.contains("\"failureThreshold\": 3"))
        #expect(json.contains("\"scheme\": \"http\""))
        let again = StrategyLoader.load(yaml: json, file: "canonical.json")
        #expect(again.errors == [])
        #expect(again.strategies.first == strategy)
    }

    @Test func withoutHealthNothingIsChecked() throws {
        let yaml = healthStrategy.replacingOccurrences(
            of: "      health:\n        path: /healthz\n        expect: 204\n        timeout: 1s\n        version: {header: X-Version}\n",
            with: "")
        let strategy = try #require(StrategyLoader.load(yaml: yaml, file: "t.yaml").strategies.first)
        #expect(strategy.target == .upstreams(stable: ["10.0.0.1:80"], canary: ["10.0.0.2:80", "10.0.0.3:80"], health: nil))
        #expect(!strategy.canonicalJSON().contains("health"))
    }

    @Test func schemaDescribesTheHealthCheck() {
        for key in ["\"health\"", "\"failureThreshold\"", "\"jsonPath\"", "\"expect\""] {
            #expect(StrategySchema.json.contains(key), "schema lacks \(key)")
        }
    }

    @Test(arguments: healthCases)
    func invalidHealthCheck(_ testCase: InvalidCase) {
        let result = StrategyLoader.load(yaml: testCase.yaml, file: "t.yaml")
        let got = result.errors.map { error in
            "\(error.line):\(error.column): " + (error.path.isEmpty ? "" : error.path + ": ") + error.message
        }
        #expect(got == testCase.errors)
        #expect(result.strategies.isEmpty)
    }
}

/// `CanaryDeployed` says what the workload verified, or that nothing was checked; never more.
@Suite struct CanaryEvidenceTests {
    let strategy = Fixture.strategy(target: .upstreams(stable: ["10.0.0.1:80"], canary: ["10.0.0.2:80"]))

    func deployed(_ evidence: CanaryEvidence?) throws -> Event {
        let started = Rollout.start(
            id: "r-1", strategy: strategy, revision: 1, version: "v2", actor: "ci", pools: nil, now: Fixture.t0)
        let input = DecisionInput.observed(Observations(routerWeight: 0, canary: .ready, canaryEvidence: evidence))
        let decision = decide(started.rollout, strategy: strategy, input: input, now: Fixture.at(10))
        return try #require(decision.events.first { $0.type == .canaryDeployed })
    }

    @Test func verifiedMembersAreInTheEvent() throws {
        let evidence = CanaryEvidence(
            checked: true, summary: "GET /healthz answered 200 with header X-Version = v2 on every member (10.0.0.2:80)",
            data: ["members": .array([.object(["member": .string("10.0.0.2:80"), "status": .number(200), "version": .string("v2")])])])
        let event = try deployed(evidence)
        #expect(
            event.message
                == "canary v2 is ready for 5% of traffic: GET /healthz answered 200 with header X-Version = v2 on every member (10.0.0.2:80)")
        #expect(event.data["checked"] == .bool(true))
        #expect(event.data["version"] == .string("v2"))
        #expect(event.data["members"] == evidence.data["members"])
    }

    @Test func anUncheckedPoolSaysSo() throws {
        let evidence = CanaryEvidence(checked: false, summary: "canary pool 10.0.0.2:80 not checked", data: [:])
        let event = try deployed(evidence)
        #expect(event.message == "canary v2 is ready for 5% of traffic: canary pool 10.0.0.2:80 not checked")
        #expect(event.data["checked"] == .bool(false))
    }

    @Test func evidenceDoesNotOverwriteTheRolloutsOwnFields() throws {
        let event = try deployed(CanaryEvidence(checked: true, summary: "ok", data: ["version": .string("v9")]))
        #expect(event.data["version"] == .string("v2"))
    }
}
