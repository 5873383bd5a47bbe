import Foundation
import SluiceCore
import SluiceTestSupport
import Testing

@Suite struct StrategyCanonicalJSONTests {
    static let minimal = """
        apiVersion: sluice.dev/v1
        kind: Strategy
        metadata: {name: api}
        spec:
          target: {deployment: api}
          traffic: {nginxIngress: {ingress: api, canaryService: api-canary}}
          stages:
            - {name: canary, weight: 10, hold: 90m}
            - {name: full, weight: 100, pause: true}
          analysis:
            providers: {prom: {prometheus: {address: "http://p:9090"}}}
            checks: [{name: errors, query: "rate(e{app=\\"{{name}}\\"}[{{interval}}])", max: 0.05, min: 0}]

        """

    @Test func everyDefaultIsWrittenKeysAreSortedAndDurationsAreGoStyle() throws {
        let strategy = try StrategyLoader.loadOne(yaml: Self.minimal, file: "api.yaml")
        #expect(strategy.canonicalJSON(pretty: false) == """
            {"apiVersion":"sluice.dev/v1","kind":"Strategy","metadata":{"labels":{},"name":"api","namespace":"default"},\
            "spec":{"analysis":{"checks":[{"max":0.05,"min":0,"name":"errors","provider":"prom",\
            "query":"rate(e{app=\\"{{name}}\\"}[{{interval}}])"}],"failureLimit":1,"interval":"10s","noDataLimit":6,\
            "onNoData":"pause","providers":{"prom":{"prometheus":{"address":"http://p:9090","headers":{},"timeout":"5s"}}}},\
            "notifications":[],"rollback":{"automatic":true},"stages":[{"checks":[],"hold":"1h30m","name":"canary",\
            "pause":false,"weight":10},{"checks":[],"name":"full","pause":true,"weight":100}],\
            "target":{"deployment":"api"},"traffic":{"nginxIngress":{"canaryService":"api-canary","ingress":"api"}}}}
            """)
    }

    @Test func prettyFormHasOneFieldALine() throws {
        let strategy = try StrategyLoader.loadOne(yaml: Self.minimal, file: "api.yaml")
        let lines = strategy.canonicalJSON().split(separator: "\n")
        #expect(lines.first == "{")
        #expect(lines.contains("    \"name\": \"api\","))
        #expect(lines.contains("        \"hold\": \"1h30m\","))
        #expect(lines.last == "}")
    }

    @Test func theCanonicalFormOfEveryExampleLoadsBackToTheSameStrategy() throws {
        let directory = repositoryRoot() + "/strategies"
        for file in try FileManager.default.contentsOfDirectory(atPath: directory) where file.hasSuffix(".yaml") {
            let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            for strategy in try StrategyLoader.loadValid(yaml: text, file: file) {
                for pretty in [true, false] {
                    let json = strategy.canonicalJSON(pretty: pretty)
                    #expect(try StrategyLoader.loadOne(yaml: json, file: "canonical.json") == strategy, "\(file)")
                    let reparsed = try JSONSerialization.jsonObject(with: Data(json.utf8))
                    #expect(reparsed is [String: Any])
                }
            }
        }
    }

    @Test func stringsThatYAMLWouldFoldOrRejectAreEscaped() throws {
        let awkward = "a\u{2028}b\u{85}c\td\u{7F}\"\\é😀"
        let strategy = try StrategyLoader.loadOne(yaml: Self.minimal, file: "api.yaml")
        var changed = strategy
        changed.labels = ["note": awkward]
        let json = changed.canonicalJSON(pretty: false)
        #expect(json.contains(#""note":"a\u2028b\u0085c\td\u007f\"\\é😀""#))
        #expect(try StrategyLoader.loadOne(yaml: json, file: "c.json") == changed)
    }

    @Test func equalStrategiesHaveEqualCanonicalForms() throws {
        // Same strategy, written differently: block vs flow style, key order, 60m vs 1h.
        let reordered = """
            kind: Strategy
            apiVersion: sluice.dev/v1
            spec:
              analysis:
                checks: [{query: "rate(e{app=\\"{{name}}\\"}[{{interval}}])", min: 0, max: 0.05, name: errors}]
                providers: {prom: {prometheus: {timeout: 5s, address: "http://p:9090"}}}
              stages:
                - {hold: 5400s, weight: 10, name: canary}
                - {pause: true, weight: 100, name: full}
              traffic: {nginxIngress: {canaryService: api-canary, ingress: api}}
              target: {deployment: api}
            metadata: {namespace: default, name: api}

            """
        let a = try StrategyLoader.loadOne(yaml: Self.minimal, file: "a.yaml")
        let b = try StrategyLoader.loadOne(yaml: reordered, file: "b.yaml")
        #expect(a.canonicalJSON() == b.canonicalJSON())
    }
}
