import Foundation
import Prometheus
import SluiceController
import SluiceCore
import SluiceProviders

/// The API's own counters (refused requests, open connections), kept in memory for `/metrics`.
public final class APIMetrics: @unchecked Sendable {
    private let lock = NSLock()
    private var authFailures: [Authenticator.Failure: Int] = [:]
    private var connections = 0

    public init() {}

    /// Counts one refused request.
    public func recordAuthFailure(_ failure: Authenticator.Failure) {
        lock.withLock { authFailures[failure, default: 0] += 1 }
    }

    /// Refused requests so far, by reason.
    public func authFailureCount(_ failure: Authenticator.Failure) -> Int {
        lock.withLock { authFailures[failure, default: 0] }
    }

    /// Counts a connection opened (`+1`) or closed (`-1`).
    func recordConnections(_ change: Int) {
        lock.withLock { connections += change }
    }

    /// Connections open now.
    public var openConnections: Int { lock.withLock { connections } }
}

extension PrometheusCollectorRegistry {
    /// Sets the series `labels` of gauge family `name` to `value`.
    func gauge(_ name: String, _ labels: [(String, String)], _ help: String, _ value: Double) {
        makeGauge(descriptor: .init(metricName: name, unitName: "", helpText: help), labels: labels).set(to: value)
    }

    /// Sets the series `labels` of counter family `name`, new in this registry, to `value` (a count kept elsewhere).
    func counter(_ name: String, _ labels: [(String, String)], _ help: String, _ value: Int) {
        makeCounter(descriptor: .init(metricName: name, unitName: "", helpText: help), labels: labels)
            .increment(by: Int64(value))
    }
}

/// A family with a series per strategy (or per strategy and check, or trigger), written as text beside the registry's
/// families, as swift-prometheus writes them: `# HELP` (backslash escaped), `# TYPE`, label values with backslash,
/// double quote and line feed escaped, a gauge's value as a Swift `Double`, a counter's as a whole number, and no lines
/// at all for a family without series. Not through the registry: swift-prometheus 2.4.1 copies a family's whole table
/// of series to add one (`MetricFamily.adding`), so a family of n series costs n²/2 copies: at 10,000 strategies the
/// 60,000 `sluice_rollbacks_total` series took a scrape past 60 s (BENCHMARKS.md, "Scale and soak", 2026-12-07).
struct SeriesFamily {
    private let name: String
    private let header: String
    private var lines = ""

    init(_ name: String, type: String, help: String) {
        self.name = name
        header = "# HELP \(name) \(help.replacingOccurrences(of: "\\", with: "\\\\"))\n# TYPE \(name) \(type)\n"
    }

    mutating func add(_ labels: [(String, String)], _ value: Double) { add(labels, text: "\(value)") }

    mutating func add(_ labels: [(String, String)], _ value: Int) { add(labels, text: "\(value)") }

    private mutating func add(_ labels: [(String, String)], text value: String) {
        lines += name + "{" + labels.map { "\($0)=\"\(Self.escaped($1))\"" }.joined(separator: ",") + "} " + value + "\n"
    }

    /// The family's lines; none without series.
    var text: String { lines.isEmpty ? "" : header + lines }

    private static func escaped(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}

/// `/metrics` in the Prometheus text format (version 0.0.4), written by swift-prometheus: each scrape puts the values
/// read now (the store's rollouts, the controller's and the API's counters) into a registry of its own, so a series
/// whose strategy or rollout is gone goes with it, and the controller's tick histograms come from its registry. The
/// families with a series per strategy are written beside it (`SeriesFamily`).
enum PrometheusText {
    /// Everything `/metrics` serves, from the store's rollout summary and the controller's counters; without a
    /// summary (the store cannot be read) the rollouts' series are left out, not reported as none.
    static func render(
        rollouts: RolloutSummary?, strategies: [String: Strategy], runtime: RuntimeMetrics, api: APIMetrics,
        tokens: Authenticator.ReloadStatus, ready: Bool, now: Timestamp
    ) -> String {
        let out = PrometheusCollectorRegistry()
        out.gauge("sluice_ready", [], "1 while /readyz answers 200 (the store is open and the reconciler runs), else 0.", ready ? 1 : 0)
        for phase in Phase.allCases {
            guard let rollouts else { break }
            out.gauge("sluice_rollouts", [("phase", phase.rawValue)], "Rollouts in the store, by phase.",
                Double(rollouts.countsByPhase[phase] ?? 0))
        }

        // The newest rollout of each strategy says where its traffic is.
        var newest: [String: Rollout] = [:]
        for rollout in rollouts?.newest ?? [] { newest[rollout.strategy.description] = rollout }
        // What the router read back: a finished rollout ended on a read-back of 0; a rollout whose router never
        // answered has no sample rather than the weight Sluice merely wants.
        let keys = Set(strategies.keys).union(newest.keys).sorted()
        var weight = SeriesFamily(
            "sluice_canary_weight", type: "gauge", help: "Canary weight in percent the router last read back, by strategy.")
        var weightWanted = SeriesFamily(
            "sluice_canary_weight_wanted", type: "gauge", help: "Canary weight in percent Sluice wants now, by strategy.")
        for key in keys {
            let observed = newest[key].map { $0.phase.isTerminal ? 0 : $0.router?.weight } ?? 0
            if let observed { weight.add([("strategy", key)], Double(observed)) }
            let wanted = newest[key].map { $0.phase.isTerminal ? 0 : $0.desiredWeight } ?? 0
            weightWanted.add([("strategy", key)], Double(wanted))
        }
        var checkValue = SeriesFamily(
            "sluice_check_value", type: "gauge", help: "Last sampled value of each check of an active rollout.")
        for (key, rollout) in newest where !rollout.phase.isTerminal {
            for (check, state) in rollout.checks {
                if let value = state.lastSample?.value { checkValue.add([("strategy", key), ("check", check)], value) }
            }
        }
        var overdueIntervals = SeriesFamily(
            "sluice_rollout_overdue_intervals", type: "gauge",
            help: "Whole analysis intervals the active Pending or Progressing rollout has gone past its next step's due time.")
        for (key, rollout) in newest {
            if let strategy = strategies[key], let overdue = rollout.overdueIntervals(strategy: strategy, now: now) {
                overdueIntervals.add([("strategy", key), ("phase", rollout.phase.rawValue)], Double(overdue))
            }
        }

        out.counter("sluice_store_errors_total", [], "Store reads and writes that failed (each failed retry counts).", runtime.storeErrors)
        out.gauge("sluice_shards_unowned", [],
            "Shards of rollouts whose lease no live replica holds, as this replica last read the lease table (their "
                + "rollouts are not ticked); 0 with one replica, which owns every rollout.", Double(runtime.shardsUnowned))
        if let owned = runtime.shardsOwned {
            out.gauge("sluice_shards_owned", [], "Shards of rollouts this replica holds the lease of (PostgreSQL).", Double(owned))
        }
        // Every series the applied strategies can make is there from the start, at 0.
        var requests = runtime.providerRequests
        for key in strategies.values.flatMap(providerRequestSeries) where requests[key] == nil { requests[key] = 0 }
        for (key, count) in requests {
            out.counter("sluice_provider_requests_total", [("provider", key.first), ("outcome", key.second)],
                "Calls to metric providers and traffic routers, by outcome.", count)
        }
        var rollbacks = runtime.rollbacks
        for key in keys {
            for kind in RollbackCause.Kind.allCases {
                rollbacks[RuntimeMetrics.RollbackKey(strategy: key, trigger: kind.metricLabel), default: 0] += 0
            }
        }
        var rollbacksTotal = SeriesFamily(
            "sluice_rollbacks_total", type: "counter", help: "Rollbacks started, by strategy and trigger.")
        for (key, count) in rollbacks { rollbacksTotal.add([("strategy", key.first), ("trigger", key.second)], count) }
        let deliveries =
            "Webhook deliveries, by outcome: delivered (answered 2xx) or failed (given up after the last attempt; the "
            + "event is skipped for that webhook)."
        out.counter("sluice_webhook_deliveries_total", [("outcome", "delivered")], deliveries, runtime.webhooksDelivered)
        out.counter("sluice_webhook_deliveries_total", [("outcome", "failed")], deliveries, runtime.webhooksFailed)
        for failure in Authenticator.Failure.allCases {
            out.counter("sluice_api_auth_failures_total", [("reason", failure.rawValue)], "API requests refused, by reason.",
                api.authFailureCount(failure))
        }
        out.gauge("sluice_api_connections", [], "Connections to the API open now.", Double(api.openConnections))
        out.counter("sluice_api_tokens_reload_failures_total", [],
            "Changes to the tokens file that could not be loaded (the last good list stayed in use).", tokens.failures)
        out.gauge("sluice_api_tokens_file_stale", [],
            "1 while the tokens file on disk is invalid and an older list is in use (its revocations have not taken effect).",
            tokens.error == nil ? 0 : 1)
        let families = [weight, weightWanted, checkValue, overdueIntervals, rollbacksTotal].map(\.text).joined()
        return out.emitToString() + families + runtime.histograms.exposition()
    }

    /// The `sluice_provider_requests_total` series `strategy`'s rollouts count into: each metric provider its checks
    /// query, by name, with every query outcome, and its router by kind with every call outcome.
    static func providerRequestSeries(_ strategy: Strategy) -> [RuntimeMetrics.ProviderRequestKey] {
        let queried = Set((strategy.analysis.checks + strategy.stages.flatMap(\.checks)).map(\.provider))
        return queried.flatMap { name in
            ProviderMetrics.Outcome.allCases.map { RuntimeMetrics.ProviderRequestKey(provider: name, outcome: $0.rawValue) }
        }
            + RouterMetrics.Outcome.allCases.map {
                RuntimeMetrics.ProviderRequestKey(provider: strategy.traffic.kind.rawValue, outcome: $0.rawValue)
            }
    }
}
