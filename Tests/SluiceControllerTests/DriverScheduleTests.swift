import SluiceCore
import SluiceRuntimeTestSupport
import SluiceStore
import Testing

@testable import SluiceController

/// Tier 1 for the driver: `DriverSchedule` fed events at given times on a virtual clock; every action it answers is
/// asserted exactly, step by step, like `decide`'s tables.
@Suite struct DriverScheduleTests {
    typealias Event = DriverSchedule.Event
    typealias Action = DriverSchedule.Action

    /// Seconds after the epoch.
    static func at(_ seconds: Int) -> Timestamp { Fixtures.epoch + .seconds(seconds) }

    /// The rollout at `generation`, last observed at `observedAt`, in `phase`.
    static func record(
        _ generation: Int64 = 1, observedAt: Timestamp? = nil, phase: Phase = .progressing
    ) -> RolloutRecord {
        var rollout = Rollout.start(
            id: "r-1", strategy: Fixtures.strategy(), revision: 3, version: "v2", actor: "ci", pools: nil,
            now: Fixtures.epoch
        ).rollout
        rollout.phase = phase
        return RolloutRecord(rollout: rollout, generation: generation, observedAt: observedAt)
    }

    static let key = Fixtures.strategy().key
    static let interval = Duration.seconds(10)

    /// One row: a name, then each event with the action the schedule must answer.
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var steps: [(Event, Action)]
        var testDescription: String { name }
    }

    /// The row of a tick's read at `seconds` with nothing failed, and the observation it starts, `late` seconds late.
    static func tick(_ record: RolloutRecord, at seconds: Int, late: Int = 0) -> (Event, Action) {
        (
            .tickRead(record, failures: [], at: at(seconds)),
            .observe(record, failures: [], observedAt: at(seconds), lateness: .seconds(late))
        )
    }

    /// Started, replayed, read, strategy read: the first rows every driver goes through.
    static func opening(_ record: RolloutRecord, at now: Timestamp, sleepsUntil deadline: Timestamp)
        -> [(Event, Action)]
    {
        [
            (.started, .replayEffects),
            (.effectsDone(at: now), .readRollout),
            (.read(record, at: now), .readStrategy(key, revision: 3)),
            (.strategyRead(interval: interval, at: now), .sleep(until: deadline)),
        ]
    }

    /// A failed effect of the rollout, as a tick's read reports it.
    static let failed = StoredEffect(
        id: 7, rollout: "r-1", effect: .setWeight(25), status: .failed, message: "503", createdAt: at(0))

    /// A whole tick that starts with an undisturbed record at `seconds`: observed without a read, recorded as
    /// `generation` with nothing to run, its slot given back.
    static func unreadTick(_ seen: RolloutRecord, at seconds: Int, leaving generation: Int64) -> [(Event, Action)] {
        [
            (.woke(at: at(seconds)), .awaitAdmission),
            (
                .admitted(holdingSlot: true, at: at(seconds)),
                .observe(seen, failures: [], observedAt: at(seconds), lateness: .zero)
            ),
            (.recorded(record(generation), committed: true, at: at(seconds)), .awaitEffects),
            (.effectsDone(at: at(seconds)), .releaseAdmission),
            (.admissionReleased(at: at(seconds)), .sleep(until: at(seconds + 10))),
        ]
    }

    /// The same tick when something happened beside the loop: it reads first.
    static func readTick(_ seen: RolloutRecord, at seconds: Int, leaving generation: Int64) -> [(Event, Action)] {
        [
            (.woke(at: at(seconds)), .awaitAdmission),
            (.admitted(holdingSlot: true, at: at(seconds)), .readForTick(lastSeen: seen)),
            tick(seen, at: seconds),
            (.recorded(record(generation), committed: true, at: at(seconds)), .awaitEffects),
            (.effectsDone(at: at(seconds)), .releaseAdmission),
            (.admissionReleased(at: at(seconds)), .sleep(until: at(seconds + 10))),
        ]
    }

    static let cases: [Case] = [
        Case(
            name: "a tick reads only after something beside the loop: failures, effects, a command, a wake",
            steps: opening(record(), at: at(0), sleepsUntil: at(0)) + [
                (.woke(at: at(0)), .awaitAdmission),
                (.admitted(holdingSlot: true, at: at(0)), .readForTick(lastSeen: nil)),
                // The read found a failed effect: the tick reports it, so the next one reads again.
                (
                    .tickRead(record(), failures: [failed], at: at(0)),
                    .observe(record(), failures: [failed], observedAt: at(0), lateness: .zero)
                ),
                (.recorded(record(2), committed: true, at: at(0)), .awaitEffects),
                (.effectsDone(at: at(0)), .releaseAdmission),
                (.admissionReleased(at: at(0)), .sleep(until: at(10))),
            ] + readTick(record(2), at: 10, leaving: 3) + unreadTick(record(3), at: 20, leaving: 4) + [
                // The tick's own decision has effects: they may fail, so the next tick reads.
                (.woke(at: at(30)), .awaitAdmission),
                (
                    .admitted(holdingSlot: true, at: at(30)),
                    .observe(record(4), failures: [], observedAt: at(30), lateness: .zero)
                ),
                (.committed(preempting: false, effects: 1), .runEffects(preempting: false, wakeWhenDone: false)),
                (.recorded(record(5), committed: true, at: at(30)), .awaitEffects),
                (.effectsDone(at: at(30)), .releaseAdmission),
                (.admissionReleased(at: at(30)), .sleep(until: at(40))),
            ] + readTick(record(5), at: 40, leaving: 6) + unreadTick(record(6), at: 50, leaving: 7) + [
                (.commandArrived, .none)  // while it sleeps
            ] + readTick(record(7), at: 60, leaving: 8) + unreadTick(record(8), at: 70, leaving: 9) + [
                (.wakeRequested, .endSleep)
            ] + readTick(record(9), at: 80, leaving: 10) + [
                // A decision with nothing to write leaves the record read, and that is undisturbed too.
                (.woke(at: at(90)), .awaitAdmission),
                (
                    .admitted(holdingSlot: false, at: at(90)),
                    .observe(record(10), failures: [], observedAt: at(90), lateness: .zero)
                ),
                (.recorded(record(10), committed: false, at: at(90)), .sleep(until: at(100))),
                (.woke(at: at(100)), .awaitAdmission),
                (
                    .admitted(holdingSlot: false, at: at(100)),
                    .observe(record(10), failures: [], observedAt: at(100), lateness: .zero)
                ),
                // A refused record (a write this driver was not told of) drops the tick and reads again.
                (.recordRefused, .readRollout),
            ]),
        Case(
            name: "a new rollout ticks at once, then an interval after it observed",
            steps: opening(record(), at: at(0), sleepsUntil: at(0)) + [
                (.woke(at: at(0)), .awaitAdmission),
                (.admitted(holdingSlot: true, at: at(0)), .readForTick(lastSeen: nil)),
                tick(record(), at: 0),
                (.recorded(record(2, observedAt: at(0)), committed: true, at: at(1)), .awaitEffects),
                (.effectsDone(at: at(2)), .releaseAdmission),
                (.admissionReleased(at: at(2)), .sleep(until: at(10))),
                (.woke(at: at(10)), .awaitAdmission),
                // Nothing happened beside the loop: the rollout the tick left is observed without a read.
                (
                    .admitted(holdingSlot: true, at: at(11)),
                    .observe(record(2, observedAt: at(0)), failures: [], observedAt: at(11), lateness: .seconds(1))
                ),
            ]),
        Case(
            name: "after a restart the cadence goes on from the last recorded observation",
            steps: opening(record(observedAt: at(-3)), at: at(0), sleepsUntil: at(7)) + [
                (.woke(at: at(7)), .awaitAdmission),
                (.admitted(holdingSlot: false, at: at(7)), .readForTick(lastSeen: nil)),
                tick(record(), at: 7),
            ]),
        Case(
            name: "a deadline missed while no driver ran counts from now: only the wait for admission is late",
            steps: opening(record(observedAt: at(-60)), at: at(0), sleepsUntil: at(-50)) + [
                (.woke(at: at(0)), .awaitAdmission),
                (.admitted(holdingSlot: true, at: at(0)), .readForTick(lastSeen: nil)),
                tick(record(), at: 2, late: 2),
            ]),
        Case(
            name: "a tick that overran the interval makes the next one late",
            steps: opening(record(), at: at(0), sleepsUntil: at(0)) + [
                (.woke(at: at(0)), .awaitAdmission),
                (.admitted(holdingSlot: false, at: at(0)), .readForTick(lastSeen: nil)),
                tick(record(), at: 0),
                (.recorded(record(2), committed: false, at: at(12)), .sleep(until: at(10))),
                (.woke(at: at(12)), .awaitAdmission),
                (
                    .admitted(holdingSlot: false, at: at(12)),
                    .observe(record(2), failures: [], observedAt: at(12), lateness: .seconds(2))
                ),
                (.recorded(record(2), committed: false, at: at(13)), .sleep(until: at(22))),
            ]),
        Case(
            name: "a tick admitted late is followed an interval after it observed, so a burst spreads out",
            steps: opening(record(), at: at(0), sleepsUntil: at(0)) + [
                (.woke(at: at(0)), .awaitAdmission),
                (.admitted(holdingSlot: true, at: at(0)), .readForTick(lastSeen: nil)),
                tick(record(), at: 3, late: 3),
                (.recorded(record(), committed: false, at: at(3)), .releaseAdmission),
                (.admissionReleased(at: at(3)), .sleep(until: at(13))),
            ]),
        Case(
            name: "a tick that finds the rollout final or gone gives its slot back and reads it again",
            steps: opening(record(), at: at(0), sleepsUntil: at(0)) + [
                (.woke(at: at(0)), .awaitAdmission),
                (.admitted(holdingSlot: true, at: at(0)), .readForTick(lastSeen: nil)),
                (.tickRead(record(phase: .rolledBack), failures: [], at: at(0)), .releaseAdmission),
                (.admissionReleased(at: at(0)), .readRollout),
                (.read(record(phase: .rolledBack), at: at(0)), .finishEffects),
                (.pendingEffects(2), .runEffects(preempting: false, wakeWhenDone: false)),
                (.effectsStarted, .readRollout),
                (.read(record(phase: .rolledBack), at: at(1)), .finishEffects),
                (.pendingEffects(0), .retire(.finished(.rolledBack))),
            ]),
        Case(
            name: "a command cancels only an observation in flight; the dropped tick reads the rollout again",
            steps: opening(record(), at: at(0), sleepsUntil: at(0)) + [
                (.commandArrived, .none),
                (.woke(at: at(0)), .awaitAdmission),
                (.commandArrived, .none),
                (.admitted(holdingSlot: false, at: at(0)), .readForTick(lastSeen: nil)),
                tick(record(), at: 0),
                (.commandArrived, .cancelObservation),
                (.observationCancelled, .readRollout),
                (.read(record(3), at: at(0)), .sleep(until: at(10))),
            ]),
        Case(
            name: "a decision that lost to a command is dropped and the rollout read again",
            steps: opening(record(), at: at(0), sleepsUntil: at(0)) + [
                (.woke(at: at(0)), .awaitAdmission),
                (.admitted(holdingSlot: true, at: at(0)), .readForTick(lastSeen: nil)),
                tick(record(), at: 0),
                (.recordRefused, .releaseAdmission),
                (.admissionReleased(at: at(1)), .readRollout),
            ]),
        Case(
            name: "a wake ends a sleep or a wait for admission; during a tick it skips the next sleep",
            steps: opening(record(), at: at(0), sleepsUntil: at(0)) + [
                (.woke(at: at(0)), .awaitAdmission),
                (.admitted(holdingSlot: false, at: at(0)), .readForTick(lastSeen: nil)),
                (.wakeRequested, .none),
                tick(record(), at: 0),
                (.recorded(record(2), committed: false, at: at(1)), .sleep(until: at(10))),
                (.woke(at: at(1)), .awaitAdmission),  // the sleep was skipped
                (.wakeRequested, .endAdmissionWait),
                (.admitted(holdingSlot: false, at: at(1)), .readForTick(lastSeen: record(2))),  // a wake: read
                tick(record(2), at: 1),
                (.recorded(record(2), committed: false, at: at(1)), .sleep(until: at(11))),
                (.woke(at: at(1)), .awaitAdmission),  // skipped again: the wake came after this sleep was last skipped
                // The wake came before the last read: nothing since, so no read.
                (
                    .admitted(holdingSlot: false, at: at(1)),
                    .observe(record(2), failures: [], observedAt: at(1), lateness: .zero)
                ),
                (.recorded(record(2), committed: false, at: at(2)), .sleep(until: at(11))),
                (.wakeRequested, .endSleep),
                (.woke(at: at(4)), .awaitAdmission),
            ]),
        Case(
            name: "a rollout or strategy revision missing from the store retires the driver",
            steps: [
                (.started, .replayEffects),
                (.effectsDone(at: at(0)), .readRollout),
                (.read(nil, at: at(0)), .retire(.gone)),
            ]),
        Case(
            name: "a strategy revision missing from the store retires the driver",
            steps: [
                (.started, .replayEffects),
                (.effectsDone(at: at(0)), .readRollout),
                (.read(record(), at: at(0)), .readStrategy(key, revision: 3)),
                (.strategyRead(interval: nil, at: at(0)), .retire(.strategyMissing)),
            ]),
    ]

    @Test(arguments: cases)
    func theScheduleAnswersEachEventWithTheExactAction(_ row: Case) {
        var schedule = DriverSchedule(storeRetryDelay: .milliseconds(500))
        for (index, (event, expected)) in row.steps.enumerated() {
            let action = schedule.handle(event)
            #expect(action == expected, "step \(index): \(event)")
            if action != expected { return }
        }
    }

    /// A committed decision (a start, a command, a tick): its effects run at once; a rollback's preempt the batch in
    /// flight and wake the driver when they are done, even with nothing new to run (the batch in flight is cut).
    @Test(arguments: [
        (false, 0, Action.none),
        (false, 2, .runEffects(preempting: false, wakeWhenDone: false)),
        (true, 0, .runEffects(preempting: true, wakeWhenDone: true)),
        (true, 3, .runEffects(preempting: true, wakeWhenDone: true)),
    ])
    func aCommittedDecisionRunsItsEffects(preempting: Bool, effects: Int, expected: Action) {
        var schedule = DriverSchedule(storeRetryDelay: .milliseconds(500))
        #expect(schedule.handle(.committed(preempting: preempting, effects: effects)) == expected)
        #expect(schedule.step == .starting, "a commit beside the loop does not move it")
    }

    /// A store call that fails is retried after the backoff wherever the driver is; the loop stays where it was.
    @Test func aFailedStoreCallIsRetriedAfterTheBackoffWithoutMovingTheLoop() {
        var schedule = DriverSchedule(storeRetryDelay: .milliseconds(500))
        for (event, _) in Self.opening(Self.record(), at: Self.at(0), sleepsUntil: Self.at(0)).prefix(2) {
            _ = schedule.handle(event)
        }
        let before = schedule
        #expect(schedule.handle(.storeFailed) == .retryStore(after: .milliseconds(500)))
        #expect(schedule == before)
        #expect(schedule.handle(.read(Self.record(), at: Self.at(0))) == .readStrategy(Self.key, revision: 3))
    }

    /// Events that do not belong where the driver is change nothing (a late report after a stop, say).
    @Test func anEventOutOfPlaceChangesNothing() {
        var schedule = DriverSchedule(storeRetryDelay: .milliseconds(500))
        _ = schedule.handle(.started)
        let before = schedule
        for event: Event in [
            .woke(at: Self.at(0)), .admitted(holdingSlot: true, at: Self.at(0)), .observationCancelled, .recordRefused,
            .recorded(Self.record(), committed: true, at: Self.at(0)), .admissionReleased(at: Self.at(0)),
            .pendingEffects(0), .effectsStarted, .strategyRead(interval: .seconds(10), at: Self.at(0)),
            .tickRead(Self.record(), failures: [], at: Self.at(0)),
        ] {
            #expect(schedule.handle(event) == .none, "\(event)")
        }
        #expect(schedule == before)
    }
}
