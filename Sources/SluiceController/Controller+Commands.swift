import Logging
import SluiceCore
import SluiceStore

/// Which queued commands the owner takes now.
enum CommandSweep: Sendable {
    /// Those of `shards` (nil: of every shard held), read from the queue.
    case shards(Set<Int>?)
    /// This one, as its notice gave it.
    case command(QueuedCommand)
}

/// A write was fenced: another replica drives the rollout now, and nothing was written, so the command can be queued
/// for it.
struct NotOwner: Error {
    var reason: String
}

/// Commands on any replica (docs/ha.md "Commands on any replica"): a replica that does not drive a rollout queues the
/// command in the store and answers with what the owner made of it; the owner takes the queued commands of its shards
/// as soon as it hears of them and carries each out through the same path as a command sent to it.
extension Controller {
    /// Queues `request` for the owner of `key`'s shard and waits (at most `options.forwardTimeout`) for its outcome,
    /// read back from the store: the rollout as the command left it, or the owner's refusal as the same error. When no
    /// owner took it in time the command is withdrawn (unless one took it meanwhile: then that is the answer), and the
    /// caller gets `unavailable` saying so: nothing was changed, and nothing will be.
    func forward(_ request: QueuedCommand.Request, strategy key: StrategyKey, to commands: any CommandQueue)
        async throws -> Rollout
    {
        let provenance = Provenance.current(tracer)
        let notices = commands.commandNotices()  // before queueing, so that no notice of it is missed
        let id = try await mapStoreErrors {
            try await commands.enqueue(
                request, strategy: key, requestID: provenance.requestID, traceparent: provenance.traceparent,
                now: self.clock.now())
        }
        logger.debug(
            "command queued for the replica that drives the rollout",
            metadata: ["strategy.name": "\(key)", "command.id": "\(id)"])
        let outcome: CommandOutcome
        if let done = await awaitOutcome(of: id, notices: notices, in: commands) {
            outcome = done
        } else {
            outcome = try await mapStoreErrors { try await commands.cancelCommand(id, now: self.clock.now()) }
        }
        switch outcome {
        case .applied(let rollout):
            return rollout
        case .refused(let code, let message):
            throw ControllerError(ControllerError.Code(rawValue: code) ?? .conflict, message)
        case .cancelled:
            throw ControllerError(
                .unavailable,
                "no replica carried out the command within \(options.forwardTimeout): the replica that drives \(key) "
                    + "(shard \(Shards.of(key))) did not take it (a replica failed and its lease has not moved yet, or "
                    + "the database is slow); the command was withdrawn and nothing was changed; try again")
        }
    }

    /// The outcome of queued command `id`, read at each notice that may concern it and at least every
    /// `options.forwardPoll`; nil when there is none within `options.forwardTimeout`.
    private func awaitOutcome(of id: Int64, notices: AsyncStream<CommandNotice>, in commands: any CommandQueue) async
        -> CommandOutcome?
    {
        let clock = self.clock
        let poll = options.forwardPoll
        return try? await withTimeout(options.forwardTimeout, on: clock, "command \(id)") {
            let (reads, reader) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            return await withTaskGroup(of: CommandOutcome?.self) { group in
                group.addTask {
                    for await notice in notices where notice == .finished(id: id) || notice == .missed {
                        reader.yield()
                    }
                    return nil
                }
                group.addTask {
                    while (try? await clock.sleep(for: poll)) != nil {  // a notice may be lost: read anyway
                        reader.yield()
                    }
                    return nil
                }
                group.addTask {
                    for await _ in reads {
                        // A failed read is tried again at the next notice or poll.
                        if let outcome = try? await commands.outcome(ofCommand: id) { return outcome }
                    }
                    return nil
                }
                defer { group.cancelAll() }
                while let next = await group.next() {
                    if let next { return next }
                }
                return nil
            }
        } ?? nil
    }

    /// Takes the queued commands of the shards this replica holds, as the queue's notices and the lease work say
    /// (`sweepCommands`), until cancelled. Each command runs in a task of its own, so a start that supersedes (and
    /// waits for a rollback) does not hold the others up.
    func takeQueuedCommands(from commands: any CommandQueue) async {
        await withDiscardingTaskGroup { group in
            let sweeps = sweepsContinuation
            group.addTask {
                for await notice in commands.commandNotices() {
                    switch notice {
                    case .command(let command): sweeps.yield(.command(command))
                    case .queued(let shard): sweeps.yield(.shards([shard]))
                    case .missed: sweeps.yield(.shards(nil))
                    case .finished: break
                    }
                }
            }
            for await sweep in self.sweeps {
                let pending: [QueuedCommand]
                switch sweep {
                case .command(let command):
                    guard mayAct(on: Shards.of(command.strategy)) else { continue }
                    pending = [command]  // taking it checks that it is still queued
                case .shards(let shards):
                    let held = Set(ownership?.view.shards.keys.map { $0 } ?? [])
                    let wanted = (shards ?? held).filter { self.mayAct(on: $0) }
                    guard !wanted.isEmpty else { continue }
                    do {
                        pending = try await commands.pendingCommands(inShards: wanted)
                    } catch {
                        counters.withLock { $0.storeErrors += 1 }
                        logger.error(
                            "cannot read the queued commands; reading them again later", metadata: ["error": "\(error)"])
                        continue
                    }
                }
                for command in pending where takingCommands.withLock({ $0.insert(command.id).inserted }) {
                    group.addTask {
                        await self.carryOut(command, from: commands)
                        self.takingCommands.withLock { _ = $0.remove(command.id) }
                    }
                }
            }
            group.cancelAll()
        }
    }

    /// Asks for the queued commands of `shards` (nil: of every shard held) to be taken now.
    func sweepCommands(inShards shards: Set<Int>?) {
        guard commands != nil else { return }
        sweepsContinuation.yield(.shards(shards))
    }

    /// Carries out queued `command` as the owner, with the actor, reason, request id and trace it was queued with. A
    /// refusal is recorded as its outcome; a store failure (or a lease lost meanwhile) leaves it queued, for the next
    /// sweep here or the shard's next owner.
    private func carryOut(_ command: QueuedCommand, from commands: any CommandQueue) async {
        guard mayAct(on: Shards.of(command.strategy)) else { return }
        let provenance = Provenance(requestID: command.requestID, traceparent: command.traceparent)
        var logger = self.logger
        logger[metadataKey: "strategy.name"] = "\(command.strategy)"
        logger[metadataKey: "command.id"] = "\(command.id)"
        do {
            switch command.request {
            case .start(let version, let actor, let supersede):
                _ = try await start(
                    strategy: command.strategy, version: version, actor: actor, supersede: supersede,
                    provenance: provenance, carrying: command.id)
            case .command(let rolloutID, let order):
                _ = try await apply(order, to: rolloutID, provenance: provenance, carrying: command.id)
            }
            logger.debug("queued command carried out")
        } catch let error as ControllerError where [.conflict, .notFound, .invalid].contains(error.code) {
            do {
                try await commands.refuseCommand(
                    command, code: error.code.rawValue, message: error.message, now: clock.now())
            } catch {
                logger.warning("cannot record the refusal of a queued command; it stays queued", metadata: ["error": "\(error)"])
            }
        } catch {
            logger.warning("cannot carry out a queued command now; it stays queued", metadata: ["error": "\(error)"])
        }
    }
}
