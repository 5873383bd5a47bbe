import Foundation

/// The managed `<ingress>-canary` Ingress of the NGINX router, on the objects as JSON.
enum CanaryIngress {
    static let canaryAnnotation = "nginx.ingress.kubernetes.io/canary"
    static let weightAnnotation = "nginx.ingress.kubernetes.io/canary-weight"
    static let weightTotalAnnotation = "nginx.ingress.kubernetes.io/canary-weight-total"
    static let managedByLabel = "app.kubernetes.io/managed-by"

    /// The canary Ingress for `weight`: the main Ingress's spec with every Service backend pointing at
    /// `canaryService` (ports kept), its labels and annotations minus NGINX's canary ones and
    /// kubectl's last-applied copy, then the canary annotations. When `existing` is given its
    /// metadata (resourceVersion, uid) is kept, so the write is conditional on it.
    static func make(
        from main: [String: Any], existing: [String: Any]?, name: String, canaryService: String, weight: Int
    ) throws -> [String: Any] {
        let mainMetadata = main["metadata"] as? [String: Any] ?? [:]
        let mainName = mainMetadata["name"] as? String ?? "?"
        // The whole spec is copied, ingressClassName too: another controller must not pick the canary up.
        var spec = main["spec"] as? [String: Any] ?? [:]
        var pointed = 0
        if var backend = spec["defaultBackend"] as? [String: Any], retarget(&backend, to: canaryService) {
            spec["defaultBackend"] = backend
            pointed += 1
        }
        if var rules = spec["rules"] as? [[String: Any]] {
            for r in rules.indices {
                guard var http = rules[r]["http"] as? [String: Any], var paths = http["paths"] as? [[String: Any]] else {
                    continue
                }
                for p in paths.indices {
                    if var backend = paths[p]["backend"] as? [String: Any], retarget(&backend, to: canaryService) {
                        paths[p]["backend"] = backend
                        pointed += 1
                    }
                }
                http["paths"] = paths
                rules[r]["http"] = http
            }
            spec["rules"] = rules
        }
        guard pointed > 0 else {
            throw ProviderError(
                .rejected, provider: "nginxIngress ingress \(mainName)", "Ingress '\(mainName)' has no Service backend")
        }
        var metadata = existing?["metadata"] as? [String: Any] ?? [:]
        metadata["name"] = name
        if let namespace = mainMetadata["namespace"] { metadata["namespace"] = namespace }
        var labels = mainMetadata["labels"] as? [String: String] ?? [:]
        labels[managedByLabel] = "sluice"
        metadata["labels"] = labels
        var annotations = (mainMetadata["annotations"] as? [String: String] ?? [:]).filter { key, _ in
            !key.hasPrefix("nginx.ingress.kubernetes.io/canary") && key != "kubectl.kubernetes.io/last-applied-configuration"
        }
        annotations[canaryAnnotation] = "true"
        annotations[weightAnnotation] = String(weight)
        metadata["annotations"] = annotations
        if let uid = mainMetadata["uid"] as? String {
            // Deleting the main Ingress takes the canary with it.
            metadata["ownerReferences"] = [
                ["apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": mainName, "uid": uid]
            ]
        }
        return ["apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata, "spec": spec]
    }

    /// Points a Service backend at `service`; false for a `resource` backend.
    private static func retarget(_ backend: inout [String: Any], to service: String) -> Bool {
        guard var target = backend["service"] as? [String: Any] else { return false }
        target["name"] = service
        backend["service"] = target
        return true
    }

    /// The canary share NGINX applies for `canary`: 0 unless `canary: "true"`, else
    /// `canary-weight` out of `canary-weight-total` (default 100), rounded. Nil when unreadable.
    static func percent(of canary: [String: Any]) -> Int? {
        let annotations = (canary["metadata"] as? [String: Any])?["annotations"] as? [String: String] ?? [:]
        guard annotations[canaryAnnotation] == "true" else { return 0 }
        guard let weight = Int(annotations[weightAnnotation] ?? "0"), weight >= 0,
            let total = Int(annotations[weightTotalAnnotation] ?? "100"), total > 0
        else { return nil }
        return TrafficSplit.percent(canary: min(weight, total), total: total)
    }
}
