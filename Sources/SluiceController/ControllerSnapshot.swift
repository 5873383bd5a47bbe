/// Counters and values of the controller for `/metrics` and `/readyz`, read at one moment.
public struct ControllerSnapshot: Sendable, Hashable {
    /// Rollouts being driven now (active ones, and finished ones with effects still to run).
    public var drivenRollouts = 0
    /// Batches of effects running now.
    public var runningEffectBatches = 0
    /// Ticks that recorded a decision.
    public var ticks = 0
    /// Ticks whose observation was dropped because a command changed the rollout meanwhile.
    public var ticksPreempted = 0
    /// Decisions recorded (ticks, commands and starts).
    public var decisions = 0
    /// Effects carried out and confirmed.
    public var effectsConfirmed = 0
    /// Effects that failed (the next tick is told).
    public var effectsFailed = 0
    /// Commands refused (wrong phase).
    public var commandsRejected = 0
    /// Webhook deliveries that succeeded.
    public var notificationsDelivered = 0
    /// Webhook deliveries given up after their last retry.
    public var notificationsFailed = 0
    /// Store reads and writes that failed (each retry that fails counts again); `sluice_store_errors_total`. A
    /// tick whose decision lost to a command (a stale state) is not an error and is not counted.
    public var storeErrors = 0
    /// Whether `run()` is running and has resumed every unfinished rollout (the API's readiness).
    public var running = false
    /// Why this replica's shard leases are not good (not renewed yet, or not since its deadline), nil when they are
    /// or there are none (one replica): the replica is not ready meanwhile.
    public var ownershipProblem: String?
    /// Shards this replica holds the lease of (nil with one replica, which owns every rollout).
    public var shardsOwned: Int?
    /// Shards no live replica held, as this replica last read the lease table (nil with one replica).
    public var shardsUnowned: Int?

    public init() {}
}
