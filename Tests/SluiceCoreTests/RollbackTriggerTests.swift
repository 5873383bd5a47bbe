import Foundation
import SluiceCore
import SluiceTestSupport
import Testing

/// The `trigger` label of `sluice_rollbacks_total` is typed: one per `RollbackCause`, documented, and the only values
/// the alert rules may match on.
@Suite struct RollbackTriggerTests {
    @Test func everyCauseHasItsOwnLabelAndReason() {
        let labels = RollbackCause.Kind.allCases.map(\.metricLabel)
        #expect(labels == ["manual", "superseded", "check_breached", "no_data", "canary_failed", "progress_deadline_exceeded"])
        #expect(Set(labels).count == labels.count)
        let causes: [RollbackCause] = [
            .command(actor: "a", reason: "r"), .superseded(actor: "a", by: "b"), .breach(check: "c"), .noData(check: "c"),
            .canaryFailed(reason: "r"), .progressDeadline(reason: "r"),
        ]
        #expect(causes.map(\.kind) == RollbackCause.Kind.allCases)
    }

    @Test func docsListEveryTriggerAndTheAlertRulesUseOnlyThem() throws {
        let api = try String(contentsOfFile: repositoryRoot() + "/docs/api.md", encoding: .utf8)
        for kind in RollbackCause.Kind.allCases {
            #expect(api.contains("`\(kind.metricLabel)`"), "docs/api.md lists trigger \(kind.metricLabel)")
        }
        let known = Set(RollbackCause.Kind.allCases.map(\.metricLabel))
        var used: [(file: String, label: String)] = []
        // The PrometheusRule holds the same rules (AlertRulesTests).
        for file in ["sluice-alerts.yaml", "sluice-alerts.test.yaml"] {
            let text = try String(contentsOfFile: repositoryRoot() + "/deploy/prometheus/" + file, encoding: .utf8)
            used += text.matches(of: /trigger(?:!=|=|: )"?([a-z_]+)/).map { (file, String($0.output.1)) }
        }
        #expect(used.map(\.label).contains("superseded"), "the rolled-back alert leaves superseded rollouts out")
        for (file, label) in used { #expect(known.contains(label), "\(file) matches trigger \(label), which no rollback has") }
    }
}
