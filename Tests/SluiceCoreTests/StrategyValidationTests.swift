import Foundation
import SluiceCore
import Testing

/// A valid strategy with one concept per line, so each case below changes one line and knows the
/// exact line and column of the error it causes.
let baseStrategy = """
    apiVersion: sluice.dev/v1
    kind: Strategy
    metadata:
      name: checkout
      namespace: shop
    spec:
      target:
        deployment: checkout
      traffic:
        gatewayAPI: {httpRoute: checkout, stableService: checkout, canaryService: checkout-canary}
      stages:
        - {name: canary, weight: 5, hold: 30m}
        - {name: pilot, weight: 25, hold: 60m}
        - {name: full, weight: 100}
      analysis:
        interval: 10s
        providers:
          prom:
            prometheus: {address: "http://prometheus:9090", timeout: 5s}
        checks:
          - name: error-rate
            query: rate(errors{app="{{name}}"}[1m])
            max: 0.01
      notifications:
        - {webhook: "https://hooks.example.com/x", on: [RolledBack]}

    """

/// One invalid variant of `base` (`baseStrategy` unless given): replace `old` by `new`, expect exactly `errors`.
struct InvalidCase: CustomTestStringConvertible, Sendable {
    var base = baseStrategy
    var old: String
    var new: String
    /// `line:column: path: message`, or `line:column: message` for errors without a path; in order.
    var errors: [String]
    var testDescription: String { errors.joined(separator: " / ") }

    init(_ old: String, _ new: String, _ errors: String...) {
        self.old = old
        self.new = new
        self.errors = errors
    }

    init(in base: String, _ old: String, _ new: String, _ errors: String...) {
        self.base = base
        self.old = old
        self.new = new
        self.errors = errors
    }

    var yaml: String {
        precondition(base.contains(old), "case text not in the base strategy: \(old)")
        return base.replacingOccurrences(of: old, with: new)
    }
}

let invalidCases: [InvalidCase] = [
    // Document and metadata.
    InvalidCase("apiVersion: sluice.dev/v1", "apiVersion: sluice.dev/v2",
                "1:13: apiVersion: unsupported apiVersion \"sluice.dev/v2\"; expected \"sluice.dev/v1\""),
    InvalidCase("kind: Strategy", "kind: Rollout", "2:7: kind: unsupported kind \"Rollout\"; expected \"Strategy\""),
    InvalidCase("kind: Strategy\n", "", "1:1: missing required key \"kind\""),
    InvalidCase("kind: Strategy", "knd: Strategy", "2:1: knd: unknown key \"knd\"; did you mean \"kind\"?"),
    InvalidCase("  name: checkout\n", "", "4:3: metadata: missing required key \"name\""),
    InvalidCase("  name: checkout", "  name: Checkout",
                "4:9: metadata.name: \"Checkout\" is not a valid name: use lowercase letters, digits and \"-\", "
                    + "starting and ending with a letter or digit, at most 63 characters"),
    InvalidCase("  name: checkout", "  name: checkout-",
                "4:9: metadata.name: \"checkout-\" is not a valid name: use lowercase letters, digits and \"-\", "
                    + "starting and ending with a letter or digit, at most 63 characters"),
    InvalidCase("  namespace: shop", "  namespace: shop_eu",
                "5:14: metadata.namespace: \"shop_eu\" is not a valid name: use lowercase letters, digits and \"-\", "
                    + "starting and ending with a letter or digit, at most 63 characters"),
    InvalidCase("  namespace: shop", "  namespace: shop\n  labels: {team: 7}",
                "6:18: metadata.labels.team: expected a string, got an integer (7)"),
    InvalidCase("  namespace: shop", "  namespace: shop\n  nmespace: shop",
                "6:3: metadata.nmespace: unknown key \"nmespace\"; did you mean \"namespace\"?"),
    InvalidCase("  namespace: shop", "  namespace: shop\n  namespace: shop",
                "6:3: metadata.namespace: duplicate key \"namespace\" (first at line 5)"),
    InvalidCase("  name: checkout", "  name: 42", "4:9: metadata.name: expected a string, got an integer (42)"),
    // Target.
    InvalidCase("    deployment: checkout", "    deploy: checkout",
                "8:5: spec.target: needs exactly one of \"deployment\" or \"upstreams\"",
                "8:5: spec.target.deploy: unknown key \"deploy\"; expected \"deployment\", \"container\" or \"upstreams\""),
    InvalidCase("    deployment: checkout", "    container: app",
                "8:5: spec.target: needs exactly one of \"deployment\" or \"upstreams\""),
    InvalidCase("    deployment: checkout", "    deployment: checkout\n    upstreams: {stable: [\"a:1\"], canary: [\"b:1\"]}",
                "9:5: spec.target.upstreams: a target is either a deployment or upstreams, not both"),
    InvalidCase("    deployment: checkout", "    deployment: [checkout]", "8:17: spec.target.deployment: expected a string, got a list"),
    InvalidCase("    deployment: checkout\n  traffic:\n    gatewayAPI: {httpRoute: checkout, stableService: checkout, canaryService: checkout-canary}",
                "    upstreams: {stable: [\"10.0.0.1:80\"], canary: [\"10.0.0.2\"]}\n  traffic:\n    caddy: {adminURL: \"http://127.0.0.1:2019\", handlerID: lb}",
                "8:51: spec.target.upstreams.canary[0]: \"10.0.0.2\" is not host:port (e.g. 10.0.0.7:8080 or app-1.internal:8080)"),
    InvalidCase("    deployment: checkout\n  traffic:\n    gatewayAPI: {httpRoute: checkout, stableService: checkout, canaryService: checkout-canary}",
                "    upstreams: {stable: [\"10.0.0.1:80\"], canary: [\"10.0.0.1:80\"]}\n  traffic:\n    caddy: {adminURL: \"http://127.0.0.1:2019\", handlerID: lb}",
                "8:51: spec.target.upstreams.canary[0]: 10.0.0.1:80 is already listed in spec.target.upstreams.stable"),
    InvalidCase("    deployment: checkout\n  traffic:\n    gatewayAPI: {httpRoute: checkout, stableService: checkout, canaryService: checkout-canary}",
                "    upstreams: {stable: [\"10.0.0.1:80\"], canary: [\"10.0.0.2:99999\"]}\n  traffic:\n    caddy: {adminURL: \"http://127.0.0.1:2019\", handlerID: lb}",
                "8:51: spec.target.upstreams.canary[0]: \"10.0.0.2:99999\" has no valid port: use host:port with a port from 1 to 65535"),
    // Routers, and routers that do not fit the target.
    InvalidCase("    deployment: checkout", "    upstreams: {stable: [\"10.0.0.1:80\"], canary: [\"10.0.0.2:80\"]}",
                "10:5: spec.traffic.gatewayAPI: gatewayAPI routes to Kubernetes Services and needs a deployment target, not upstreams"),
    InvalidCase("    gatewayAPI: {httpRoute: checkout, stableService: checkout, canaryService: checkout-canary}",
                "    caddy: {adminURL: \"http://127.0.0.1:2019\", handlerID: lb}",
                "10:5: spec.traffic.caddy: caddy balances host:port pools and needs an upstreams target, not a deployment"),
    InvalidCase("    gatewayAPI: {httpRoute: checkout, stableService: checkout, canaryService: checkout-canary}",
                "    gatewayApi: {httpRoute: checkout, stableService: checkout, canaryService: checkout-canary}",
                "10:5: spec.traffic.gatewayApi: unknown key \"gatewayApi\"; did you mean \"gatewayAPI\"?"),
    InvalidCase("    gatewayAPI: {httpRoute: checkout, stableService: checkout, canaryService: checkout-canary}",
                "    gatewayAPI: {httpRoute: checkout, stableService: checkout, canaryService: checkout-canary}\n    nginxIngress: {ingress: checkout, canaryService: checkout-canary}",
                "11:5: spec.traffic.nginxIngress: only one router per strategy; found gatewayAPI and nginxIngress"),
    InvalidCase("stableService: checkout, canaryService: checkout-canary}", "stableService: checkout}",
                "10:17: spec.traffic.gatewayAPI: missing required key \"canaryService\""),
    InvalidCase("canaryService: checkout-canary}", "canaryService: checkout}",
                "10:79: spec.traffic.gatewayAPI.canaryService: must differ from stableService"),
    InvalidCase("    gatewayAPI: {httpRoute: checkout, stableService: checkout, canaryService: checkout-canary}",
                "    awsALB: {region: eu-west-1, listenerARN: \"arn:aws:elasticloadbalancing:us-east-1:1:listener/app/x/1/2\", stableTargetGroupARN: \"arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/a/1\", canaryTargetGroupARN: \"arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/b/2\"}",
                "10:46: spec.traffic.awsALB.listenerARN: the ARN is in region \"us-east-1\", but region is \"eu-west-1\""),
    InvalidCase("    gatewayAPI: {httpRoute: checkout, stableService: checkout, canaryService: checkout-canary}",
                "    awsALB: {region: eu-west-1, listenerARN: \"arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/x/1/2\", stableTargetGroupARN: \"arn:aws:s3:::bucket\", canaryTargetGroupARN: \"arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/b/2\"}",
                "10:131: spec.traffic.awsALB.stableTargetGroupARN: \"arn:aws:s3:::bucket\" is not an ELB targetgroup ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/...)"),
    // Stages.
    InvalidCase("    - {name: pilot, weight: 25, hold: 60m}", "    - {name: pilot, weight: 4, hold: 60m}",
                "13:29: spec.stages[1].weight: 4 is not greater than the previous stage's 5"),
    InvalidCase("    - {name: full, weight: 100}", "    - {name: full, weight: 90}",
                "14:28: spec.stages[2].weight: the last stage must have weight 100, got 90"),
    InvalidCase("    - {name: canary, weight: 5, hold: 30m}", "    - {name: canary, weight: 0, hold: 30m}",
                "12:30: spec.stages[0].weight: must be between 1 and 100, got 0"),
    InvalidCase("    - {name: canary, weight: 5, hold: 30m}", "    - {name: canary, weight: 5.5, hold: 30m}",
                "12:30: spec.stages[0].weight: expected an integer, got a number (5.5)"),
    InvalidCase("    - {name: canary, weight: 5, hold: 30m}", "    - {name: canary, wieght: 5, hold: 30m}",
                "12:22: spec.stages[0].wieght: unknown key \"wieght\"; did you mean \"weight\"?"),
    InvalidCase("    - {name: pilot, weight: 25, hold: 60m}", "    - {name: canary, weight: 25, hold: 60m}",
                "13:14: spec.stages[1].name: duplicate stage name \"canary\" (first at line 12)"),
    // A stage without a name is stage-N (N from 1), and that name is taken like any other.
    InvalidCase("    - {name: canary, weight: 5, hold: 30m}\n    - {name: pilot,", "    - {weight: 5, hold: 30m}\n    - {name: stage-1,",
                "13:14: spec.stages[1].name: duplicate stage name \"stage-1\" (first at line 12)"),
    InvalidCase("    - {name: canary, weight: 5, hold: 30m}\n    - {name: pilot,", "    - {name: stage-2, weight: 5, hold: 30m}\n    - {",
                "13:7: spec.stages[1].name: this stage's default name \"stage-2\" is taken (at line 12); give it a name"),
    InvalidCase("    - {name: canary, weight: 5, hold: 30m}", "    - {name: canary, weight: 5, hold: 30 minutes}",
                "12:39: spec.stages[0].hold: \"30 minutes\" is not a duration: use a number and a unit (ms, s, m, h), e.g. 90s, 30m, 1h30m"),
    InvalidCase("    - {name: canary, weight: 5, hold: 30m}", "    - {name: canary, weight: 5, hold: 30}",
                "12:39: spec.stages[0].hold: expected a duration such as 90s, 30m or 1h30m, got an integer (30)"),
    InvalidCase("    - {name: canary, weight: 5, hold: 30m}", "    - {name: canary, weight: 5, hold: 5s}",
                "12:39: spec.stages[0].hold: must be at least 10s, got 5s"),
    InvalidCase("    - {name: canary, weight: 5, hold: 30m}", "    - {name: canary, weight: 5}",
                "12:7: spec.stages[0]: needs hold (a duration such as 30m) or pause: true"),
    InvalidCase("    - {name: canary, weight: 5, hold: 30m}", "    - {name: canary, weight: 5, hold: 30m, pause: true}",
                "12:33: spec.stages[0].hold: a stage has either hold or pause: true, not both"),
    InvalidCase("    - {name: canary, weight: 5, hold: 30m}", "    - {name: canary, weight: 5, pause: yes}",
                "12:40: spec.stages[0].pause: expected true or false, got a string (\"yes\")"),
    InvalidCase("  stages:\n    - {name: canary, weight: 5, hold: 30m}\n    - {name: pilot, weight: 25, hold: 60m}\n    - {name: full, weight: 100}",
                "  stages: []\n\n\n", "11:11: spec.stages: needs at least one stage"),
    InvalidCase("    - {name: full, weight: 100}", "    - {name: full, weight: 100, checks: [{name: error-rate, query: up, min: 1}]}",
                "14:49: spec.stages[2].checks[0].name: duplicate check name \"error-rate\" (first at line 21)"),
    // Analysis, providers, checks.
    InvalidCase("    interval: 10s", "    interval: 500ms", "16:15: spec.analysis.interval: must be at least 1s, got 500ms"),
    InvalidCase("    interval: 10s", "    interval: 10s\n    onNoData: wait",
                "17:15: spec.analysis.onNoData: \"wait\" is not one of \"pause\" or \"rollback\""),
    InvalidCase("    interval: 10s", "    interval: 10s\n    failureLimit: 0", "17:19: spec.analysis.failureLimit: must be at least 1, got 0"),
    InvalidCase("timeout: 5s}", "timeout: 15s}",
                "19:66: spec.analysis.providers.prom.prometheus.timeout: 15s is longer than analysis.interval 10s"),
    InvalidCase("{address: \"http://prometheus:9090\"", "{address: \"prometheus:9090\"",
                "19:31: spec.analysis.providers.prom.prometheus.address: \"prometheus:9090\" is not an http:// or https:// URL"),
    InvalidCase("        prometheus: {address:", "        graphite: {address:",
                "19:9: spec.analysis.providers.prom: needs one provider kind: \"prometheus\" or \"web\"",
                "19:9: spec.analysis.providers.prom.graphite: unknown key \"graphite\"; expected \"prometheus\" or \"web\""),
    InvalidCase("      - name: error-rate", "      - name: error-rate\n        provider: promm",
                "22:19: spec.analysis.checks[0].provider: unknown provider \"promm\"; did you mean \"prom\"?"),
    InvalidCase("        max: 0.01\n", "        max: 0.01\n      - {name: error-rate, query: up, max: 1}\n",
                "24:16: spec.analysis.checks[1].name: duplicate check name \"error-rate\" (first at line 21)"),
    InvalidCase("        max: 0.01", "        limit: 0.01",
                "21:9: spec.analysis.checks[0]: needs a threshold: max, min or both (or a compare)",
                "23:9: spec.analysis.checks[0].limit: unknown key \"limit\"; expected \"name\", \"provider\", \"query\", \"max\", \"min\", \"minCount\" or \"compare\""),
    InvalidCase("        max: 0.01\n", "", "21:9: spec.analysis.checks[0]: needs a threshold: max, min or both (or a compare)"),
    InvalidCase("        max: 0.01", "        max: 0.01\n        min: 0.5", "24:14: spec.analysis.checks[0].min: min 0.5 is greater than max 0.01"),
    InvalidCase("        max: 0.01", "        max: \"1%\"", "23:14: spec.analysis.checks[0].max: expected a number, got a string (\"1%\")"),
    InvalidCase("        max: 0.01", "        max: .inf", "23:14: spec.analysis.checks[0].max: must be a finite number, got .inf"),
    InvalidCase("{app=\"{{name}}\"}", "{app=\"{{nmae}}\"}",
                "22:33: spec.analysis.checks[0].query: unknown template \"{{nmae}}\"; did you mean {{name}}?"),
    InvalidCase("[1m])", "[{{window}}])",
                "22:44: spec.analysis.checks[0].query: unknown template \"{{window}}\"; known: {{name}}, {{namespace}}, "
                    + "{{stable}}, {{canary}}, {{version}}, {{interval}}"),
    InvalidCase("[1m])", "[{{interval])", "22:44: spec.analysis.checks[0].query: \"{{\" is not closed by \"}}\""),
    InvalidCase("        query: rate(errors{app=\"{{name}}\"}[1m])\n", "",
                "21:9: spec.analysis.checks[0]: missing required key \"query\""),
    InvalidCase("      prom:\n", "      web:\n        web: {url: \"http://x/y\", jsonPath: v}\n      prom:\n",
                "23:9: spec.analysis.checks[0]: missing required key \"provider\": there is more than one provider (web, prom)"),
    // Notifications.
    InvalidCase("{webhook: \"https://hooks.example.com/x\"", "{webhook: \"ftp://hooks.example.com/x\"",
                "25:17: spec.notifications[0].webhook: \"ftp://hooks.example.com\" is not an http:// or https:// URL"),
    InvalidCase("on: [RolledBack]", "on: [RolledBak]",
                "25:53: spec.notifications[0].on[0]: unknown event type \"RolledBak\"; did you mean \"RolledBack\"?"),
    InvalidCase("on: [RolledBack]", "on: RolledBack", "25:52: spec.notifications[0].on: expected a list, got a string (\"RolledBack\")"),
    // YAML itself.
    InvalidCase("  name: checkout", "  name: [checkout", "5:12: not valid YAML: did not find expected ',' or ']' while parsing a flow sequence"),
    InvalidCase("  namespace: shop", "  namespace: [shop]", "5:14: metadata.namespace: expected a string, got a list"),
]

@Suite struct StrategyValidationTests {
    @Test func baseStrategyIsValid() {
        let result = StrategyLoader.load(yaml: baseStrategy, file: "t.yaml")
        #expect(result.errors == [])
        #expect(result.strategies.count == 1)
    }

    @Test func tableHasEnoughCases() {
        #expect(invalidCases.count >= 40)
    }

    @Test(arguments: invalidCases + comparisonCases + bakeCases)
    func invalidDocument(_ testCase: InvalidCase) {
        let result = StrategyLoader.load(yaml: testCase.yaml, file: "t.yaml")
        let got = result.errors.map { error in
            "\(error.line):\(error.column): " + (error.path.isEmpty ? "" : error.path + ": ") + error.message
        }
        #expect(got == testCase.errors)
        #expect(result.strategies.isEmpty)
    }
}
