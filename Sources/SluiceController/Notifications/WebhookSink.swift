import SluiceCore
import SluiceStore

/// One webhook of one strategy: it gets the strategy's events whose rollout runs a revision naming the webhook,
/// of the types that revision asks for, in `seq` order, each at least once.
struct WebhookSink: Sendable, Hashable {
    var strategy: StrategyKey
    var webhook: String

    /// The name of its delivery cursor in the store.
    var cursorName: String { DeliverySink.webhook(strategy, url: webhook) }

    init(strategy: StrategyKey, webhook: String) {
        self.strategy = strategy
        self.webhook = webhook
    }

    /// The sink a cursor name stands for; nil for another kind of sink.
    init?(cursorName: String) {
        let parts = cursorName.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "webhook" else { return nil }
        let key = parts[1].split(separator: "/", maxSplits: 1)
        guard key.count == 2 else { return nil }
        self.init(strategy: StrategyKey(namespace: String(key[0]), name: String(key[1])), webhook: String(parts[2]))
    }

    /// Whether `targets`, the webhook's entries in the revision an event's rollout runs, want events of `type`.
    static func wants(_ targets: [NotificationTarget], _ type: EventType) -> Bool {
        targets.contains { $0.on.isEmpty || $0.on.contains(type.rawValue) }
    }
}

extension Notifier {
    /// Events read from the log per query.
    static let page = 100
    /// How often a sink whose strategy another replica drives asks whether this replica drives it now.
    static let ownerPoll = Duration.seconds(1)

    /// Delivers `sink`'s events from its cursor on, advancing the cursor after each delivery (or give-up), until
    /// cancelled. A sink seen for the first time starts at the beginning of its strategy's log: only rollouts of
    /// revisions that name its webhook have events for it, so nothing older than the webhook is sent. While another
    /// replica drives the strategy (`sendsFor` is false) it sends nothing and waits; when this replica takes the
    /// strategy's shard it goes on from the stored cursor, which the previous sender advanced.
    func follow(_ sink: WebhookSink) async {
        var cursor: Int64 = 0
        var sending = false
        // rollout id -> the entries for this webhook in the revision it runs; a rollout's revision never changes.
        var targets: [String: [NotificationTarget]] = [:]
        while !Task.isCancelled {
            guard sendsFor(sink.strategy) else {
                sending = false
                // Polled: a shard changes hands at a lease renewal (seconds), and a delivery is no part of a
                // rollout's schedule, so real time like the retries' backoff.
                do { try await Task.sleep(for: Self.ownerPoll) } catch { return }
                continue
            }
            if !sending {
                guard let stored = await retryingStore({ try await self.store.deliveryCursor(sink: sink.cursorName) ?? 0 })
                else { return }
                cursor = max(cursor, stored)
                sending = true
            }
            let query = EventQuery(after: cursor, strategy: sink.strategy, limit: Self.page)
            guard let events = await retryingStore({ try await self.store.nextEvents(query) }) else { return }
            var stored = cursor
            for event in events {
                // The shard may have moved while this waited for the events: the new owner sends them.
                guard sendsFor(sink.strategy) else { break }
                if targets[event.rollout] == nil {
                    if targets.count >= 1024 { targets.removeAll(keepingCapacity: true) }
                    guard let found = await retryingStore({ try await self.targets(of: event, webhook: sink.webhook) })
                    else { return }
                    targets[event.rollout] = found
                }
                if WebhookSink.wants(targets[event.rollout] ?? [], event.type) {
                    if await deliver(event, to: sink.webhook) == .cancelled { return }
                    guard await advance(sink, to: event.seq) else { return }
                    stored = event.seq
                }
                cursor = event.seq
            }
            // Events this webhook does not want move the cursor once per page.
            if cursor > stored, !(await advance(sink, to: cursor)) { return }
        }
    }

    private func advance(_ sink: WebhookSink, to seq: Int64) async -> Bool {
        await retryingStore({ try await self.store.advanceDeliveryCursor(sink: sink.cursorName, to: seq) }) != nil
    }

    /// The entries for `webhook` in the strategy revision that `event`'s rollout runs (none: not sent there).
    private func targets(of event: Event, webhook: String) async throws -> [NotificationTarget] {
        guard let rollout = try await store.rollout(event.rollout),
            let stored = try await store.strategy(event.strategy, revision: rollout.strategyRevision)
        else { return [] }
        return stored.strategy.notifications.filter { $0.webhook == webhook }
    }
}
