/// The router's side of a rollout as the last tick read it, kept beside the weight Sluice wants, so that
/// what Sluice reports is what the router does, never only what Sluice asked for (docs/decide.md "Read-back").
public struct RouterReadBack: Sendable, Hashable, Codable {
    /// The canary weight the router read back last; nil when it has never answered.
    public var weight: Int?
    /// When the router last answered a read-back.
    public var readAt: Timestamp?
    /// Since when the router has not confirmed the wanted weight (it read back another one or could not be
    /// read); nil while it confirms it.
    public var unconfirmedSince: Timestamp?
    /// Why the effects of the last tick failed (`setWeight(0) failed: ...`), while they fail.
    public var failure: String?
    /// Looks in a row on which the router, confirming the canary's share of traffic, took every canary member for
    /// down (`Observations.routerHealth`); the second is a canary failure. Nil when the last look was not one.
    public var canaryDownLooks: Int? = nil
    /// What the router said on the last of those looks.
    public var canaryDown: String? = nil

    public init(
        weight: Int? = nil, readAt: Timestamp? = nil, unconfirmedSince: Timestamp? = nil, failure: String? = nil
    ) {
        self.weight = weight
        self.readAt = readAt
        self.unconfirmedSince = unconfirmedSince
        self.failure = failure
    }
}

extension Rollout {
    /// The router read back `desiredWeight` on the last tick (a command that changed the wanted weight since
    /// makes this false until a tick reads the new weight back).
    public var weightConfirmed: Bool {
        guard let router else { return false }
        return router.weight == desiredWeight && router.unconfirmedSince == nil
    }
}

extension Decider {
    /// Keeps what this tick read back from the router beside the weight wanted after deciding; a failed
    /// read-back keeps the last weight read and its time, and counts as not confirming.
    mutating func recordReadBack(_ observations: Observations) {
        var readBack = rollout.router ?? RouterReadBack()
        if let weight = observations.routerWeight {
            readBack.weight = weight
            readBack.readAt = now
        }
        if observations.routerWeight == rollout.desiredWeight {
            readBack.unconfirmedSince = nil
        } else if readBack.unconfirmedSince == nil {
            readBack.unconfirmedSince = now
        }
        readBack.failure = observations.failedEffects.first.map {
            sanitizedExcerpt("\($0.effect) failed: \($0.message)")
        }
        rollout.router = readBack
    }
}

extension Decider {
    /// The router's own view as evidence (#23.8, docs/judge.md "The router's view"): when this tick's read-back
    /// confirms the canary's share of traffic and the router takes every canary member for down, on
    /// `Comparison.silentLooksToBreach` looks in a row, the reason for a canary failure; nil otherwise. One look
    /// is not enough, for the reason one silent look is not: a moment's failures (a restart, a burst of
    /// refused connections) mark an upstream down for a short while and must not fail a good version.
    mutating func canaryDownByRouter(_ observations: Observations) -> String? {
        let previous = rollout.router?.canaryDownLooks
        guard let health = observations.routerHealth, health.down, rollout.desiredWeight > 0,
            observations.routerWeight == rollout.desiredWeight
        else {
            if previous != nil {
                rollout.router?.canaryDownLooks = nil
                rollout.router?.canaryDown = nil
            }
            return nil
        }
        let looks = (previous ?? 0) + 1
        let summary = sanitizedExcerpt(health.summary)
        var readBack = rollout.router ?? RouterReadBack()
        readBack.canaryDownLooks = looks
        readBack.canaryDown = summary
        rollout.router = readBack
        guard looks >= Comparison.silentLooksToBreach else { return nil }
        return "the router takes it for down on \(looks) looks in a row: \(summary)"
    }
}
