import SluiceController
import SluiceCore
import SluiceStore
import Testing

/// `LeaseBook`, the pure part of shard ownership (docs/ha.md "Leases and fencing"): which shards a replica takes,
/// gives back and renews given the table it read, and until when it may act, on a virtual monotonic clock.
struct LeaseBookTests {
    static let options = LeaseOptions(duration: .seconds(15), renewEvery: .seconds(5))

    /// A table of `count` shards: `holders[shard]` holds it (live unless in `expired`), the rest are free.
    static func table(
        _ holders: [Int: String], expired: Set<Int> = [], live: Set<String>, count: Int = Shards.count
    ) -> LeaseTable {
        LeaseTable(
            leases: (0..<count).map {
                ShardLease(shard: $0, holder: holders[$0], epoch: 1, expired: expired.contains($0))
            },
            liveReplicas: live)
    }

    /// A book of replica `me` holding `held` (epoch 1), renewed at 0.
    static func book(_ me: String = "a", holding held: [Int]) -> LeaseBook {
        var book = LeaseBook(replica: me, options: options)
        book.acquired(Dictionary(uniqueKeysWithValues: held.map { ($0, 1) }), sentAt: .zero)
        return book
    }

    struct PlanCase: Sendable, CustomTestStringConvertible {
        var name: String
        var held: [Int]
        var table: LeaseTable
        /// How many shards the plan takes, and which it gives back.
        var takes: Int
        var giveUp: [Int]
        var testDescription: String { name }
    }

    static let others = Dictionary(uniqueKeysWithValues: (32..<64).map { ($0, "b") })

    static let planCases: [PlanCase] = [
        PlanCase(name: "alone, every shard free: takes them all", held: [], table: table([:], live: ["a"]),
                 takes: 64, giveUp: []),
        PlanCase(name: "alone before its first heartbeat shows: still counts itself", held: [], table: table([:], live: []),
                 takes: 64, giveUp: []),
        PlanCase(name: "a second replica joined: gives back the upper half", held: Array(0..<64),
                 table: table(Dictionary(uniqueKeysWithValues: (0..<64).map { ($0, "a") }), live: ["a", "b"]),
                 takes: 0, giveUp: Array(32..<64)),
        PlanCase(name: "joined a replica holding half: takes the free half", held: [],
                 table: table(others, live: ["a", "b"]), takes: 32, giveUp: []),
        PlanCase(name: "three replicas: a fair share is 22", held: Array(0..<30),
                 table: table(Dictionary(uniqueKeysWithValues: (0..<30).map { ($0, "a") }), live: ["a", "b", "c"]),
                 takes: 0, giveUp: Array(22..<30)),
        PlanCase(name: "at its share: nothing to do", held: Array(0..<22), table: table([:], live: ["a", "b", "c"]),
                 takes: 0, giveUp: []),
        PlanCase(name: "another's live leases are never taken", held: [],
                 table: table(Dictionary(uniqueKeysWithValues: (0..<64).map { ($0, "b") }), live: ["a", "b"]),
                 takes: 0, giveUp: []),
        PlanCase(name: "a dead replica's expired leases are taken, up to the share",
                 held: Array(0..<32),
                 table: table(
                    Dictionary(uniqueKeysWithValues: (0..<32).map { ($0, "a") } + (32..<64).map { ($0, "b") }),
                    expired: Set(32..<64), live: ["a"]),
                 takes: 32, giveUp: []),
    ]

    @Test(arguments: planCases)
    func plan(_ test: PlanCase) {
        let book = Self.book(holding: test.held)
        let plan = book.plan(test.table)
        #expect(plan.take.count == test.takes)
        #expect(plan.giveUp == test.giveUp)
        // Only free shards (or rows still naming this replica) are ever taken, and never one already held.
        let byShard = Dictionary(uniqueKeysWithValues: test.table.leases.map { ($0.shard, $0) })
        for shard in plan.take {
            #expect(!test.held.contains(shard))
            #expect(byShard[shard]!.isFree || byShard[shard]!.holder == "a")
        }
    }

    @Test
    func rowsStillNamingThisReplicaAreTakenBackAfterItsDeadlinePassed() {
        var book = Self.book(holding: [3, 4])
        #expect(book.expire(at: .seconds(12)) == [3, 4])
        // The database never let them go (nobody else took them): they are taken again, with a new epoch.
        let plan = book.plan(Self.table([3: "a", 4: "a"], live: ["a", "b"]))
        #expect(plan.take.contains(3) && plan.take.contains(4))
    }

    @Test
    func twoReplicasStartingTogetherAskForDifferentShardsFirst() {
        let table = Self.table([:], live: ["replica-a", "replica-b"])
        let first = LeaseBook(replica: "replica-a", options: Self.options).plan(table).take
        let second = LeaseBook(replica: "replica-b", options: Self.options).plan(table).take
        #expect(first.count == 32 && second.count == 32)
        #expect(first.first != second.first)
    }

    @Test
    func theDeadlineIsMeasuredFromWhenTheRenewalWasSentLessTheMargin() {
        var book = LeaseBook(replica: "a", options: Self.options)
        #expect(!book.isValid(at: .zero), "not valid before the first renewal")
        book.acquired([7: 3], sentAt: .seconds(1))
        // Sent at 10 s, answered whenever: valid until 10 + 15 - 3 = 22 s.
        #expect(book.renewed([7], sentAt: .seconds(10)) == [])
        #expect(book.mayAct(on: 7, at: .milliseconds(21_999)))
        #expect(!book.mayAct(on: 7, at: .seconds(22)))
        #expect(!book.mayAct(on: 8, at: .seconds(11)), "a shard it does not hold")
        #expect(book.expire(at: .milliseconds(21_999)) == [])
        #expect(book.expire(at: .seconds(22)) == [7])
        #expect(book.held.isEmpty && !book.isValid(at: .seconds(22)))
    }

    @Test
    func aShardWhoseRenewalWasRefusedIsLost() {
        var book = Self.book(holding: [1, 2, 5])
        #expect(book.renewed([1, 5], sentAt: .seconds(5)) == [2])
        #expect(book.held.keys.sorted() == [1, 5])
        #expect(!book.mayAct(on: 2, at: .seconds(6)))
        #expect(book.mayAct(on: 1, at: .seconds(6)))
    }

    @Test
    func sharesTakenLaterDoNotExtendTheRenewalsDeadline() {
        var book = LeaseBook(replica: "a", options: Self.options)
        _ = book.renewed([], sentAt: .seconds(10))
        book.acquired([9: 2], sentAt: .seconds(11))
        #expect(book.deadline == .seconds(22))
        #expect(book.released([9, 10]) == [9: 2])
    }

    /// The hash is part of the data format: replicas of two versions must put a strategy in the same shard.
    @Test
    func theShardOfAStrategyIsFNV1aOfItsKeyModulo64() {
        #expect(Shards.count == 64)
        #expect(Shards.fnv1a("web/search") == 0x216c_f2e1_06d3_4752)
        #expect(Shards.of(StrategyKey(namespace: "web", name: "search")) == 18)
        #expect(Shards.of(StrategyKey(namespace: "web", name: "checkout")) == 62)
        #expect(Shards.of(StrategyKey(namespace: "default", name: "api")) == 49)
    }
}
