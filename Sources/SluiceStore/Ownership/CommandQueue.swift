import SluiceCore

/// A command or a start that reached a replica which does not drive the rollout, queued in the store for the replica
/// that does (docs/ha.md "Commands on any replica"). The owner carries it out through the same path a command sent
/// to it takes, with the actor, reason, request id and trace the receiving replica was given.
public struct QueuedCommand: Sendable, Hashable {
    /// What was asked.
    public enum Request: Sendable, Hashable, Codable {
        /// `POST /v1/rollouts`: a rollout of the strategy's latest revision.
        case start(version: String, actor: String, supersede: Bool)
        /// A command on one rollout (`rollback`, `pause`, `resume`, `promote`).
        case command(rolloutID: String, Command)
    }

    /// The queue's number for it, increasing in the order commands were queued.
    public var id: Int64
    /// The strategy whose rollouts it is about: its shard says which replica carries it out.
    public var strategy: StrategyKey
    public var request: Request
    /// The API request id the receiving replica was given, stamped on the events it causes.
    public var requestID: String?
    /// The W3C trace context of the API request, continued by the owner.
    public var traceparent: String?

    public init(id: Int64, strategy: StrategyKey, request: Request, requestID: String?, traceparent: String?) {
        self.id = id
        self.strategy = strategy
        self.request = request
        self.requestID = requestID
        self.traceparent = traceparent
    }
}

/// What became of a queued command.
public enum CommandOutcome: Sendable, Hashable, Codable {
    /// Carried out: the rollout as the command left it (what the owner's API would have answered).
    case applied(Rollout)
    /// Refused by the owner, with the controller's error code (`conflict`, `notFound`, `invalid`) and its message.
    case refused(code: String, message: String)
    /// Withdrawn by the replica that queued it before any owner took it (nobody carried it out in time).
    case cancelled
}

/// What a replica hears about the queue from the database (every replica's commits).
public enum CommandNotice: Sendable, Hashable {
    /// A command of a rollout in `shard` was queued.
    case queued(shard: Int)
    /// This command was queued, all of it in the notice (so the owner need not read it; one too long for a notice
    /// comes as `queued`).
    case command(QueuedCommand)
    /// The command `id` was carried out, refused or cancelled.
    case finished(id: Int64)
    /// The replica was not listening for a while (it connected again): anything may have happened meanwhile.
    case missed
}

/// The queue of commands for the replica that drives a rollout, when several replicas share the store
/// (PostgreSQL). With SQLite one replica drives everything and carries out every command it is sent, so there is
/// no queue. Taking a command is the decision that carries it out: the owner records the decision and marks the
/// command applied in one fenced transaction, so a command is carried out once, by the shard's owner, or not at all.
public protocol CommandQueue: Sendable {
    /// Queues `request` for the owner of `strategy`'s shard and tells every replica (`CommandNotice.queued`).
    /// Returns its id.
    func enqueue(
        _ request: QueuedCommand.Request, strategy: StrategyKey, requestID: String?, traceparent: String?,
        now: Timestamp
    ) async throws -> Int64

    /// The commands still queued for rollouts in `shards`, oldest first.
    func pendingCommands(inShards shards: Set<Int>) async throws -> [QueuedCommand]

    /// What became of command `id`; nil while it is queued (or when there is no such command).
    func outcome(ofCommand id: Int64) async throws -> CommandOutcome?

    /// Withdraws command `id` unless an owner took it first; returns `.cancelled`, or what the owner made of it.
    func cancelCommand(_ id: Int64, now: Timestamp) async throws -> CommandOutcome

    /// Marks `command` refused with `code` and `message`, fenced by its shard's lease; a no-op when it is no longer
    /// queued.
    func refuseCommand(_ command: QueuedCommand, code: String, message: String, now: Timestamp) async throws

    /// `RolloutStore.startRollout` that also marks queued command `id` applied, in the same transaction; refused with
    /// `staleState` (and nothing written) when the command is no longer queued.
    func startRollout(
        strategy key: StrategyKey, now: Timestamp, carrying id: Int64,
        _ build: @escaping @Sendable (_ id: String, _ strategy: StoredStrategy, _ pools: Pools?) throws -> Decision
    ) async throws -> RecordedDecision

    /// `RolloutStore.record` that also marks queued command `id` applied, in the same transaction; refused with
    /// `staleState` (and nothing written) when the command is no longer queued.
    func record(
        _ tick: TickRecord, carrying id: Int64,
        _ decide: @escaping @Sendable (Rollout, StoredStrategy) throws -> Decision?
    ) async throws -> RecordedDecision?

    /// Every notice about the queue from now on, until the consumer stops iterating.
    func commandNotices() -> AsyncStream<CommandNotice>
}
