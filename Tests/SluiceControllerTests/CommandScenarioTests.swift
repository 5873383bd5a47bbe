import SluiceController
import SluiceCore
import SluiceRuntimeTestSupport
import SluiceStore
import SluiceTestSupport
import Testing

/// Every command in every phase, through the real controller: accepted or refused (409) as the phase
/// allows, and the rollout still ends in the right final phase with a gap-free log.
@Suite struct CommandScenarioTests {
    enum Kind: String, CaseIterable, Sendable {
        case rollback, pause, resume, promote

        func command() -> Command {
            switch self {
            case .rollback: .rollback(actor: "oncall", reason: "by hand")
            case .pause: .pause(actor: "oncall")
            case .resume: .resume(actor: "oncall")
            case .promote: .promote(actor: "release", full: false)
            }
        }
    }

    /// The phases a command can meet, and which commands each accepts.
    static let accepted: [Phase: Set<Kind>] = [
        .pending: [.rollback, .pause],
        .progressing: [.rollback, .pause, .promote],
        .paused: [.rollback, .resume, .promote],
        .promoting: [.rollback],
        .rollingBack: [],
        .succeeded: [],
        .rolledBack: [],
    ]

    static let cases: [(Phase, Kind)] = accepted.keys.sorted { $0.rawValue < $1.rawValue }.flatMap { phase in
        Kind.allCases.map { (phase, $0) }
    }

    @Test(arguments: cases)
    func command(in phase: Phase, kind: Kind) async throws {
        let scenario = try await Scenario()
        defer { Task { await scenario.stop() } }
        let world = scenario.world()
        let id = try await bring(scenario, world, to: phase)
        #expect(try await scenario.phase(id) == phase)

        let accepted = Self.accepted[phase]!.contains(kind)
        do {
            let after = try await scenario.controller.command(rolloutID: id, kind.command())
            #expect(accepted, "\(kind) in \(phase) should have been refused")
            switch kind {
            case .rollback: #expect(after.phase == .rollingBack)
            case .pause: #expect(after.phase == .paused)
            case .resume, .promote: #expect(after.phase == .progressing)
            }
        } catch let error as ControllerError {
            #expect(!accepted, "\(kind) in \(phase) was refused: \(error)")
            #expect(error.code == .conflict)
            #expect(error.message.contains(id))
        }

        // Let it finish: gates open, the canary ready, a paused rollout resumed.
        world.router.gate.openGate()
        world.workload.gate.openGate()
        world.workload.setStatus(.ready)
        try await scenario.settle()
        if try await scenario.phase(id) == .paused {
            _ = try await scenario.command(id, .resume(actor: "oncall"))
        }
        let final = try await scenario.tickUntilFinal(id)
        let rolledBack = phase == .rolledBack || phase == .rollingBack || (accepted && kind == .rollback)
        #expect(final.phase == (rolledBack ? .rolledBack : .succeeded))
        let events = try await scenario.store.events()
        #expect(events.map(\.seq) == Array(1...Int64(events.count)))
    }

    /// Starts a rollout and drives it into `phase`.
    private func bring(_ scenario: Scenario, _ world: FakeWorld, to phase: Phase) async throws -> String {
        switch phase {
        case .pending:
            world.workload.setStatus(.progressing("pulling the image"))
            return try await scenario.start().id
        case .progressing:
            let id = try await scenario.start().id
            try await scenario.tick()
            return id
        case .paused:
            let id = try await scenario.start().id
            try await scenario.tick()
            _ = try await scenario.command(id, .pause(actor: "oncall"))
            return id
        case .promoting:
            world.workload.gate.close()  // promoteStable hangs, so the rollout stays Promoting
            let id = try await scenario.start().id
            for _ in 0..<40 where try await scenario.phase(id) != .promoting {
                try await scenario.tick(orUntil: { world.workload.gate.waiters == 1 })
            }
            return id
        case .rollingBack:
            let id = try await scenario.start().id
            try await scenario.tick()
            world.router.gate.close()  // setWeight(0) hangs, so the rollout stays RollingBack
            _ = try await scenario.controller.command(rolloutID: id, .rollback(actor: "oncall", reason: "first"))
            try await waitUntil("setWeight(0) to hang", interval: .milliseconds(2)) { world.router.gate.waiters == 1 }
            return id
        case .succeeded:
            let id = try await scenario.start().id
            try await scenario.tickUntilFinal(id)
            return id
        case .rolledBack:
            let id = try await scenario.start().id
            _ = try await scenario.command(id, .rollback(actor: "oncall", reason: "first"))
            try await scenario.tickUntilFinal(id)
            return id
        case .failed, .baking:
            // Baking needs a strategy with a bake: BakeScenarioTests.
            throw SupportError("not a case of this table")
        }
    }
}
