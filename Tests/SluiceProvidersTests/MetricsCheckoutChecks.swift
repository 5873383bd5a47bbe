import Foundation
import SluiceCore
import SluiceProviders
import SluiceTestSupport

/// The checks of strategies/checkout.yaml, the default strategy, as the integration tests run them.
enum CheckoutChecks {
    static func strategy() throws -> Strategy {
        let path = repositoryRoot() + "/strategies/checkout.yaml"
        return try StrategyLoader.loadOne(yaml: String(contentsOfFile: path, encoding: .utf8), file: path)
    }

    static func check(named name: String) throws -> Check {
        guard let check = try strategy().analysis.checks.first(where: { $0.name == name }) else {
            throw SupportError("strategies/checkout.yaml has no check named \(name)")
        }
        return check
    }

    /// The rendered query with its `[1m]` windows cut to `[5s]`: a test scrapes every second and
    /// cannot wait a minute.
    static func shortWindowQuery(_ check: Check) throws -> String {
        let query = check.renderedQuery(.forChecks(of: try strategy(), version: "test"))
        guard query.contains("[1m]") else { throw SupportError("\(check.name): no [1m] window to shorten in \(query)") }
        return query.replacingOccurrences(of: "[1m]", with: "[5s]")
    }
}
