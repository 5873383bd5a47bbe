import Foundation

/// The HTTPRoute arithmetic of the Gateway API router, on the object as JSON: which rules Sluice
/// manages, the weights it writes into them, and the canary share it reads back.
enum HTTPRouteWeights {
    /// A `backendRefs` entry that names the Service `name` (core group, kind Service or unset).
    static func refers(_ ref: [String: Any], to name: String) -> Bool {
        guard ref["name"] as? String == name else { return false }
        let group = ref["group"] as? String ?? ""
        let kind = ref["kind"] as? String ?? "Service"
        return group.isEmpty && kind == "Service"
    }

    /// `spec.rules` with the stable backend at `100 - weight` and the canary at `weight` in every rule
    /// that sends to the stable Service; a rule without the canary backend gets one (the stable
    /// backend's port). Other rules and other backends stay exactly as they were.
    static func rules(
        _ rules: [[String: Any]], stable: String, canary: String, canaryWeight weight: Int, route: String
    ) throws -> [[String: Any]] {
        var managed = 0
        let updated = rules.map { rule -> [String: Any] in
            var rule = rule
            var refs = rule["backendRefs"] as? [[String: Any]] ?? []
            guard let stableIndex = refs.firstIndex(where: { refers($0, to: stable) }) else { return rule }
            managed += 1
            if !refs.contains(where: { refers($0, to: canary) }) {
                var ref: [String: Any] = ["name": canary]
                for key in ["port", "group", "kind"] { if let value = refs[stableIndex][key] { ref[key] = value } }
                refs.append(ref)
            }
            for index in refs.indices {
                if refers(refs[index], to: stable) { refs[index]["weight"] = 100 - weight }
                if refers(refs[index], to: canary) { refs[index]["weight"] = weight }
            }
            rule["backendRefs"] = refs
            return rule
        }
        guard managed > 0 else {
            throw ProviderError(
                .rejected, provider: "gatewayAPI httproute \(route)",
                "no rule of HTTPRoute '\(route)' has a backendRef to the stable Service '\(stable)'")
        }
        return updated
    }

    /// The canary's share of the weights in the rules that send to the stable or the canary Service:
    /// (canary weight, total weight). A backend without `weight` has the Gateway API default, 1.
    static func split(_ rules: [[String: Any]], stable: String, canary: String) -> (canary: Int, total: Int)? {
        var canaryWeight = 0
        var total = 0
        var managed = false
        for rule in rules {
            let refs = rule["backendRefs"] as? [[String: Any]] ?? []
            guard refs.contains(where: { refers($0, to: stable) || refers($0, to: canary) }) else { continue }
            managed = true
            for ref in refs {
                let weight = max(TrafficSplit.integer(ref["weight"]) ?? 1, 0)
                total += weight
                if refers(ref, to: canary) { canaryWeight += weight }
            }
        }
        return managed ? (canaryWeight, total) : nil
    }
}
