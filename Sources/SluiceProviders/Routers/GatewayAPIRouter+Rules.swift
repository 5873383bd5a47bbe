import SluiceKubernetes

/// The HTTPRoute arithmetic of the Gateway API router: which rules Sluice manages, the weights it
/// writes into them, and the canary share it reads back.
enum HTTPRouteWeights {
    /// A backend that names the Service `name` of the route's own namespace (core group, kind Service
    /// or unset, namespace unset or the route's).
    static func refers(_ ref: HTTPBackendRef, to name: String, in namespace: String) -> Bool {
        ref.name == name && (ref.group ?? "").isEmpty && (ref.kind ?? "Service") == "Service"
            && (ref.namespace ?? namespace) == namespace
    }

    /// `rules` with the stable backend at `100 - weight` and the canary at `weight` in every rule that
    /// sends to the stable Service; a rule without the canary backend gets one on the stable backend's
    /// port. Other rules and other backends stay exactly as they were.
    static func rules(
        _ rules: [HTTPRouteRule], stable: String, canary: String, canaryWeight weight: Int, route: String,
        namespace: String
    ) throws -> [HTTPRouteRule] {
        var managed = 0
        let updated = rules.map { rule -> HTTPRouteRule in
            var rule = rule
            var refs = rule.backendRefs ?? []
            guard let stableRef = refs.first(where: { refers($0, to: stable, in: namespace) }) else { return rule }
            managed += 1
            if !refs.contains(where: { refers($0, to: canary, in: namespace) }) {
                refs.append(HTTPBackendRef(name: canary, port: stableRef.port))
            }
            for index in refs.indices {
                if refers(refs[index], to: stable, in: namespace) { refs[index].weight = 100 - weight }
                if refers(refs[index], to: canary, in: namespace) { refs[index].weight = weight }
            }
            rule.backendRefs = refs
            return rule
        }
        guard managed > 0 else {
            throw ProviderError(
                .rejected, provider: "gatewayAPI httproute \(route)",
                "no rule of HTTPRoute '\(route)' has a backendRef to the stable Service '\(stable)'")
        }
        return updated
    }

    /// The canary's weight and the total weight in the rules that send to the stable or the canary
    /// Service; nil when no rule does. A backend without `weight` has the Gateway API default, 1.
    static func split(
        _ rules: [HTTPRouteRule], stable: String, canary: String, namespace: String
    ) -> (canary: Int, total: Int)? {
        var canaryWeight = 0
        var total = 0
        var managed = false
        for rule in rules {
            let refs = rule.backendRefs ?? []
            let sendsToUs = refs.contains {
                refers($0, to: stable, in: namespace) || refers($0, to: canary, in: namespace)
            }
            guard sendsToUs else { continue }
            managed = true
            for ref in refs {
                let weight = max(ref.weight ?? 1, 0)
                total += weight
                if refers(ref, to: canary, in: namespace) { canaryWeight += weight }
            }
        }
        return managed ? (canaryWeight, total) : nil
    }
}
