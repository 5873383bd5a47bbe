import Foundation
import Logging
import SluiceCore
import SluiceStore

/// Which rollouts this replica drives, when several share a PostgreSQL store (docs/ha.md "Leases and fencing"):
/// it renews its shards' leases every `renewEvery`, takes free shards up to its fair share and gives back the excess,
/// and tells the controller which shards it gained (their rollouts resume) and lost (their drivers stop). What to do
/// is `LeaseBook`'s (pure); this only carries it out. A watchdog stops every driver when the book's own deadline
/// passes without a renewal, whatever the database is doing.
public final class ShardOwnership: Sendable {
    /// The shards held and their epochs, as the store's fencing reads them.
    public let view: LeaseView
    let store: any LeaseStore
    let clock: any SluiceClock
    let name: String
    let logger: Logger
    let book: Locked<LeaseBook>
    /// Why the last renewal failed, while the book is not valid.
    let lastFailure = Locked<String?>(nil)
    /// Shards no live replica held at the last read of the table, less those this replica took then
    /// (`sluice_shards_unowned`).
    let unowned = Locked<Int?>(nil)

    /// Ownership for the replica `view.replica`, over `store`'s lease table; `name` (the host name) is written beside
    /// the id for people reading the table.
    public init(
        store: any LeaseStore, view: LeaseView, name: String = ShardOwnership.hostName(), clock: any SluiceClock,
        options: LeaseOptions, logger: Logger
    ) {
        self.store = store
        self.view = view
        self.name = name
        self.clock = clock
        var logger = logger
        logger[metadataKey: "replica.id"] = "\(view.replica)"
        self.logger = logger
        book = Locked(LeaseBook(replica: view.replica, options: options))
    }

    /// A new replica id: the host name (for people) and 8 random hex digits (two processes on one host differ).
    public static func newReplicaID() -> String {
        hostName() + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }

    /// This machine's host name (the pod's name in Kubernetes).
    public static func hostName() -> String {
        ProcessInfo.processInfo.hostName
    }

    /// Whether this replica may act for a rollout in `shard` now: it holds the shard and its deadline has not passed.
    public func mayAct(on shard: Int) -> Bool {
        let now = clock.monotonicNow()
        return book.withLock { $0.mayAct(on: shard, at: now) }
    }

    /// Nil while the lease view is good; else why not (for `/readyz`).
    public var problem: String? {
        let now = clock.monotonicNow()
        guard !book.withLock({ $0.isValid(at: now) }) else { return nil }
        if let failure = lastFailure.current { return "cannot renew its shard leases: \(failure)" }
        return "its shard leases are not renewed (no renewal has answered in time)"
    }

    /// Renews, rebalances and watches the deadline until cancelled, then gives every lease back (a graceful stop, so
    /// the other replicas take the shards at their next renewal instead of after the lease).
    func run(for controller: Controller) async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.watchDeadline(controller) }
            group.addTask { await self.renewLoop(controller) }
        }
    }

    /// Gives every lease back and removes the heartbeat; once the controller's drivers have stopped.
    func leave() async {
        let held = book.withLock { $0.released($0.held.keys.sorted()) }
        view.set([:])
        do {
            try await store.releaseLeases(held, replica: view.replica, leaving: true)
            logger.info("shard leases given back", metadata: ["shards": "\(held.count)"])
        } catch {
            logger.warning("cannot give the shard leases back; they expire", metadata: ["error": "\(error)"])
        }
    }

    private func renewLoop(_ controller: Controller) async {
        while !Task.isCancelled {
            do {
                try await step(controller)
                lastFailure.withLock { $0 = nil }
                // Commands queued for the shards held (those just taken included), in case a notice was missed.
                controller.sweepCommands(inShards: nil)
            } catch is CancellationError {
                return
            } catch {
                lastFailure.withLock { $0 = "\(error)" }
                logger.error("cannot renew the shard leases", metadata: ["error": "\(error)"])
            }
            do {
                try await clock.sleep(for: book.current.options.renewEvery)  // the renewal period
            } catch {
                return
            }
        }
    }

    /// One renewal: heartbeat, renew, read; then stop what was lost, give back the excess, take the fair share.
    func step(_ controller: Controller) async throws {
        let held = book.current.held
        let sentAt = clock.monotonicNow()
        let duration = book.current.options.duration
        let (renewed, table) = try await store.renewLeases(
            held, replica: view.replica, name: name, duration: duration)
        let (lost, plan) = book.withLock { book in
            let lost = book.renewed(renewed, sentAt: sentAt)
            return (lost, book.plan(table))
        }
        publish()
        unowned.withLock { $0 = table.leases.count { $0.isFree } }
        if !lost.isEmpty {
            logger.warning("shard leases lost to another replica", metadata: ["shards": "\(lost)"])
            await controller.stopDrivers(inShards: Set(lost))
        }
        if !plan.giveUp.isEmpty {
            let given = book.withLock { $0.released(plan.giveUp) }
            publish()
            await controller.stopDrivers(inShards: Set(given.keys))
            try await store.releaseLeases(given, replica: view.replica, leaving: false)
            logger.info(
                "shard leases given back to rebalance",
                metadata: ["shards": "\(given.keys.sorted())", "replicas": "\(table.liveReplicas.count)"])
        }
        if !plan.take.isEmpty {
            let sentAt = clock.monotonicNow()
            let taken = try await store.acquireLeases(plan.take, replica: view.replica, duration: duration)
            guard !taken.isEmpty else { return }
            book.withLock { $0.acquired(taken, sentAt: sentAt) }
            publish()
            unowned.withLock { $0 = $0.map { max(0, $0 - taken.count) } }
            logger.info(
                "shard leases taken",
                metadata: ["shards": "\(taken.keys.sorted())", "replicas": "\(table.liveReplicas.count)"])
            if !(await controller.resumeRollouts(inShards: Set(taken.keys))) {
                // Undriven shards must not stay held: give them back, another replica (or the next step) takes them.
                let given = book.withLock { $0.released(Array(taken.keys)) }
                publish()
                await controller.stopDrivers(inShards: Set(given.keys))
                try await store.releaseLeases(given, replica: view.replica, leaving: false)
            }
        }
    }

    /// Stops every driver once the book's deadline passes without a renewal (the database is unreachable or slow):
    /// by then another replica may be about to take the shards.
    private func watchDeadline(_ controller: Controller) async {
        while !Task.isCancelled {
            let now = clock.monotonicNow()
            let (lost, deadline) = book.withLock { book in (book.expire(at: now), book.deadline) }
            if !lost.isEmpty {
                publish()
                logger.error(
                    "shard leases not renewed before their deadline; acting on nothing until renewed",
                    metadata: ["shards": "\(lost.count)"])
                await controller.stopDrivers(inShards: Set(lost))
            }
            let wait = deadline.map { max($0 - now, .milliseconds(10)) } ?? book.current.options.renewEvery
            do {
                try await clock.sleep(for: wait)  // until the deadline, which a renewal moves on
            } catch {
                return
            }
        }
    }

    /// Copies the book's shards to the view the store fences by, under the book's lock (so two publishes never
    /// leave an older copy behind).
    private func publish() {
        book.withLock { view.set($0.held) }
    }
}
