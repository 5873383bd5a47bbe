import Foundation
import SluiceTestSupport
import Testing

/// `sluice validate`, run as a subprocess: output and exit codes (0 valid, 1 invalid, 64 usage).
@Suite struct ValidateCommandTests {
    @Test func everyExampleStrategyIsValid() async throws {
        let result = try await runSluice(["validate", "strategies/"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr == "")
        let examples = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot() + "/strategies")
            .filter { $0.hasSuffix(".yaml") }
        #expect(result.stdout.split(separator: "\n").count == examples.count)
        #expect(result.stdout.contains("strategies/checkout.yaml: ok (shop/checkout)\n"))
    }

    @Test func anInvalidFilePrintsEveryErrorCompilerStyleAndExits1() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
        apiVersion: sluice.dev/v1
        kind: Strategy
        metadata: {name: checkout}
        spec:
          target: {deployment: checkout}
          traffic:
            gatewayAPI: {httpRoute: checkout, stableService: checkout, canaryService: checkout-canary}
          stages:
            - {name: canary, weight: 50, hold: 30m}
            - {name: pilot, weight: 40, hold: 1h}
            - {name: full, weight: 100, hold: 1m, pasue: true}

        """.write(toFile: directory + "/bad.yaml", atomically: true, encoding: .utf8)
        try "apiVersion: sluice.dev/v1\nkind: Strategy\nmetadata: {name: ok}\nspec:\n  target: {deployment: ok}\n"
            .appending("  traffic: {nginxIngress: {ingress: ok, canaryService: ok-canary}}\n")
            .appending("  stages: [{name: all, weight: 100, pause: true}]\n")
            .write(toFile: directory + "/good.yaml", atomically: true, encoding: .utf8)
        let result = try await runSluice(["validate", "bad.yaml", "good.yaml"], in: directory)
        #expect(result.status == 1)
        #expect(result.stderr == """
            bad.yaml:10:29: error: spec.stages[1].weight: 40 is not greater than the previous stage's 50
            bad.yaml:11:43: error: spec.stages[2].pasue: unknown key "pasue"; did you mean "pause"?
            2 errors in 1 file

            """)
        #expect(result.stdout == "good.yaml: ok (default/ok)\n")
    }

    @Test func filesInTheCurrentDirectoryAreNamedWithoutDotSlash() async throws {
        let result = try await runSluice(["validate", "."], in: repositoryRoot() + "/strategies")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("aws-alb.yaml: ok (payments/payments-api)\n"))
    }

    @Test func aMissingFileIsAClearErrorAndExits1() async throws {
        let result = try await runSluice(["validate", "strategies/checkout.yaml", "no-such-file.yaml"])
        #expect(result.status == 1)
        #expect(result.stderr == "no-such-file.yaml: error: cannot read: no such file\n1 error in 1 file\n")
        #expect(result.stdout == "strategies/checkout.yaml: ok (shop/checkout)\n")
    }

    @Test func aDirectoryWithoutStrategiesExits1() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try await runSluice(["validate", directory])
        #expect(result.status == 1)
        #expect(result.stderr == "\(directory): error: no *.yaml or *.yml files in this directory\n")
    }

    @Test func theSameStrategyInTwoFilesIsAnError() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let text = try String(contentsOfFile: repositoryRoot() + "/strategies/checkout.yaml", encoding: .utf8)
        try text.write(toFile: directory + "/a.yaml", atomically: true, encoding: .utf8)
        try text.write(toFile: directory + "/b.yaml", atomically: true, encoding: .utf8)
        let result = try await runSluice(["validate", "--quiet", "a.yaml", "b.yaml"], in: directory)
        #expect(result.status == 1)
        #expect(result.stdout == "")
        #expect(result.stderr == "b.yaml:3:1: error: strategy shop/checkout is already defined at a.yaml:3:1\n1 error in 1 file\n")
    }

    @Test(arguments: [["validate"], ["validate", "--no-such-flag", "x.yaml"], ["no-such-command"]])
    func badUsageExits64(arguments: [String]) async throws {
        let result = try await runSluice(arguments)
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains("Usage:") || result.stderr.contains("Error:"))
    }
}
