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
