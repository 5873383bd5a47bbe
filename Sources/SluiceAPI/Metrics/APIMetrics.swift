import Foundation
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

/// Renders the Prometheus text exposition format (version 0.0.4).
struct PrometheusText {
    private(set) var text = ""

    mutating func header(_ name: String, _ type: String, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: KeyValuePairs<String, String> = [:], _ value: Double) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.key)=\"\(Self.escape($0.value))\"" }.joined(separator: ",") + "}"
        }
        text += " \(Self.format(value))\n"
    }

    /// A counter family whose samples carry two labels, in label order; each of `zeros` not counted yet is a sample
    /// at 0, so that `rate()` and `increase()` see its first rise (a series that appears at 1 shows none).
    mutating func counters(
        _ name: String, _ help: String, labels: (String, String), _ counts: [RuntimeMetrics.LabelPair: Int],
        zeros: [RuntimeMetrics.LabelPair] = []
    ) {
        header(name, "counter", help)
        var counts = counts
        for key in zeros where counts[key] == nil { counts[key] = 0 }
        for (key, count) in counts.sorted(by: { $0.key < $1.key }) {
            sample(name, [labels.0: key.first, labels.1: key.second], Double(count))
        }
    }

    /// A histogram family: cumulative `_bucket{le}` samples, `+Inf`, `_sum` and `_count`.
    mutating func histogram(_ name: String, _ histogram: Histogram, _ help: String) {
        header(name, "histogram", help)
        var cumulative = 0
        for (bound, count) in zip(histogram.bounds, histogram.bucketCounts) {
            cumulative += count
            sample(name + "_bucket", ["le": Self.format(bound)], Double(cumulative))
        }
        sample(name + "_bucket", ["le": "+Inf"], Double(histogram.count))
        sample(name + "_sum", [:], histogram.sum)
        sample(name + "_count", [:], Double(histogram.count))
    }

    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}

extension PrometheusText {
    /// Everything `/metrics` serves, from the store's rollout summary and the controller's counters; without a
    /// summary (the store cannot be read) the rollouts' series are left out, not reported as none.
    static func render(
        rollouts: RolloutSummary?, strategies: [String: Strategy], runtime: RuntimeMetrics, api: APIMetrics,
        tokens: Authenticator.ReloadStatus, ready: Bool, now: Timestamp
    ) -> String {
        var out = PrometheusText()
        out.header("sluice_ready", "gauge", "1 while /readyz answers 200 (the store is open and the reconciler runs), else 0.")
        out.sample("sluice_ready", [:], ready ? 1 : 0)
        out.header("sluice_rollouts", "gauge", "Rollouts in the store, by phase.")
        for phase in Phase.allCases {
            guard let rollouts else { break }
            out.sample("sluice_rollouts", ["phase": phase.rawValue], Double(rollouts.countsByPhase[phase] ?? 0))
        }

        // The newest rollout of each strategy says where its traffic is.
        var newest: [String: Rollout] = [:]
        for rollout in rollouts?.newest ?? [] { newest[rollout.strategy.description] = rollout }
        // What the router read back: a finished rollout ended on a read-back of 0; a rollout whose router never
        // answered has no sample rather than the weight Sluice merely wants.
        let keys = Set(strategies.keys).union(newest.keys).sorted()
        out.header("sluice_canary_weight", "gauge", "Canary weight in percent the router last read back, by strategy.")
        for key in keys {
            let observed = newest[key].map { $0.phase.isTerminal ? 0 : $0.router?.weight } ?? 0
            if let observed { out.sample("sluice_canary_weight", ["strategy": key], Double(observed)) }
        }
        out.header("sluice_canary_weight_wanted", "gauge", "Canary weight in percent Sluice wants now, by strategy.")
        for key in keys {
            let wanted = newest[key].map { $0.phase.isTerminal ? 0 : $0.desiredWeight } ?? 0
            out.sample("sluice_canary_weight_wanted", ["strategy": key], Double(wanted))
        }
        out.header("sluice_check_value", "gauge", "Last sampled value of each check of an active rollout.")
        for (key, rollout) in newest.sorted(by: { $0.key < $1.key }) where !rollout.phase.isTerminal {
            for (check, state) in rollout.checks.sorted(by: { $0.key < $1.key }) {
                if let value = state.lastSample?.value {
                    out.sample("sluice_check_value", ["strategy": key, "check": check], value)
                }
            }
        }

        out.header(
            "sluice_rollout_overdue_intervals", "gauge",
            "Whole analysis intervals the active Pending or Progressing rollout has gone past its next step's due time.")
        for (key, rollout) in newest.sorted(by: { $0.key < $1.key }) {
            if let strategy = strategies[key], let overdue = rollout.overdueIntervals(strategy: strategy, now: now) {
                out.sample("sluice_rollout_overdue_intervals", ["strategy": key, "phase": rollout.phase.rawValue], Double(overdue))
            }
        }

        out.histogram(
            "sluice_reconcile_duration_seconds", runtime.reconcileDuration,
            "Duration of each reconcile tick of a rollout, from the start of its observation to the commit of its decision.")
        out.histogram(
            "sluice_tick_lateness_seconds", runtime.tickLateness,
            "How late each tick's observation started against its schedule (previous tick's start plus the interval).")

        out.header("sluice_store_errors_total", "counter", "Store reads and writes that failed (each failed retry counts).")
        out.sample("sluice_store_errors_total", [:], Double(runtime.storeErrors))
        out.header(
            "sluice_shards_unowned", "gauge",
            "Shards of rollouts whose lease no live replica holds, as this replica last read the lease table (their "
                + "rollouts are not ticked); 0 with one replica, which owns every rollout.")
        out.sample("sluice_shards_unowned", [:], Double(runtime.shardsUnowned))
        if let owned = runtime.shardsOwned {
            out.header("sluice_shards_owned", "gauge", "Shards of rollouts this replica holds the lease of (PostgreSQL).")
            out.sample("sluice_shards_owned", [:], Double(owned))
        }
        // Every series the applied strategies can make is there from the start, at 0.
        out.counters(
            "sluice_provider_requests_total", "Calls to metric providers and traffic routers, by outcome.",
            labels: ("provider", "outcome"), runtime.providerRequests,
            zeros: strategies.values.flatMap(providerRequestSeries))
        out.counters(
            "sluice_rollbacks_total", "Rollbacks started, by strategy and trigger.", labels: ("strategy", "trigger"),
            runtime.rollbacks,
            zeros: keys.flatMap { key in
                RollbackCause.Kind.allCases.map { RuntimeMetrics.RollbackKey(strategy: key, trigger: $0.metricLabel) }
            })
        out.header(
            "sluice_webhook_deliveries_total", "counter",
            "Webhook deliveries, by outcome: delivered (answered 2xx) or failed (given up after the last attempt; the "
                + "event is skipped for that webhook).")
        out.sample("sluice_webhook_deliveries_total", ["outcome": "delivered"], Double(runtime.webhooksDelivered))
        out.sample("sluice_webhook_deliveries_total", ["outcome": "failed"], Double(runtime.webhooksFailed))
        out.header("sluice_api_auth_failures_total", "counter", "API requests refused, by reason.")
        for failure in Authenticator.Failure.allCases {
            out.sample("sluice_api_auth_failures_total", ["reason": failure.rawValue], Double(api.authFailureCount(failure)))
        }
        out.header("sluice_api_connections", "gauge", "Connections to the API open now.")
        out.sample("sluice_api_connections", [:], Double(api.openConnections))
        out.header(
            "sluice_api_tokens_reload_failures_total", "counter",
            "Changes to the tokens file that could not be loaded (the last good list stayed in use).")
        out.sample("sluice_api_tokens_reload_failures_total", [:], Double(tokens.failures))
        out.header(
            "sluice_api_tokens_file_stale", "gauge",
            "1 while the tokens file on disk is invalid and an older list is in use (its revocations have not taken effect).")
        out.sample("sluice_api_tokens_file_stale", [:], tokens.error == nil ? 0 : 1)
        return out.text
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
