import SluiceCore

/// Strategies and values the store, controller and crash tests share.
public enum Fixtures {
    /// 2026-11-24T08:00:00Z.
    public static let epoch = Timestamp(millisecondsSinceEpoch: 1_795_507_200_000)

    /// A strategy over two pools behind Caddy: stages 5/25/50/100 holding `hold` each, one check
    /// `error-rate` (max 0.05) on provider `prom`, analysed every `interval`.
    public static func strategy(
        name: String = "checkout", namespace: String = "default", interval: Duration = .seconds(10),
        hold: Duration = .seconds(30), weights: [Int] = [5, 25, 50, 100], failureLimit: Int = 1,
        noDataLimit: Int = 3, onNoData: NoDataAction = .pause, automaticRollback: Bool = true,
        pauseStages: Set<Int> = [], notifications: [NotificationTarget] = [],
        target: Target = .upstreams(stable: ["10.0.0.1:80"], canary: ["10.0.0.2:80"])
    ) -> Strategy {
        Strategy(
            name: name, namespace: namespace, target: target,
            traffic: .caddy(adminURL: "http://127.0.0.1:2019", handlerID: "\(name)-proxy"),
            stages: weights.enumerated().map { index, weight in
                pauseStages.contains(index)
                    ? Stage(name: "s\(index)-\(weight)", weight: weight, pause: true)
                    : Stage(name: "s\(index)-\(weight)", weight: weight, hold: hold)
            },
            analysis: Analysis(
                interval: interval, failureLimit: failureLimit, noDataLimit: noDataLimit, onNoData: onNoData,
                providers: ["prom": .prometheus(PrometheusConfig(address: "http://127.0.0.1:9090"))],
                checks: [
                    Check(
                        name: "error-rate", provider: "prom",
                        query: "rate(errors{instance=~\"{{canary}}\"}[{{interval}}])",
                        max: 0.05)
                ]
            ),
            rollback: RollbackPolicy(automatic: automaticRollback),
            notifications: notifications
        )
    }
}
