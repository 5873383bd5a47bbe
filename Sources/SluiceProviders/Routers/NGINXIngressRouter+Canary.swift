import SluiceCore
import SluiceKubernetes

/// The managed `<ingress>-canary` Ingress of the NGINX router.
enum CanaryIngress {
    static let canaryAnnotation = "nginx.ingress.kubernetes.io/canary"
    static let weightAnnotation = "nginx.ingress.kubernetes.io/canary-weight"
    static let weightTotalAnnotation = "nginx.ingress.kubernetes.io/canary-weight-total"
    static let managedByLabel = "app.kubernetes.io/managed-by"

    /// The canary Ingress for `weight`: the main Ingress's spec with every Service backend pointing at
    /// `canaryService` (ports kept), its labels and annotations minus NGINX's canary ones and
    /// kubectl's last-applied copy, then the canary annotations, owned by the main Ingress. When
    /// `existing` is given its metadata (resourceVersion, uid) is the starting point.
    static func make(
        from main: Ingress, existing: Ingress?, name: String, canaryService: String, weight: Int
    ) throws -> Ingress {
        let mainName = main.metadata.name ?? "?"
        // The whole spec is copied, ingressClassName too: another controller must not pick the canary up.
        var spec = main.spec
        var pointed = 0
        if spec.defaultBackend?.service != nil {
            spec.defaultBackend?.service?.name = canaryService
            pointed += 1
        }
        for r in (spec.rules ?? []).indices {
            for p in (spec.rules?[r].http?.paths ?? []).indices
            where spec.rules?[r].http?.paths[p].backend.service != nil {
                spec.rules?[r].http?.paths[p].backend.service?.name = canaryService
                pointed += 1
            }
        }
        guard pointed > 0 else {
            throw ProviderError(
                .rejected, provider: "nginxIngress ingress \(mainName)", "Ingress '\(mainName)' has no Service backend")
        }
        var metadata = existing?.metadata ?? ObjectMeta()
        metadata.name = name
        metadata.namespace = main.metadata.namespace
        var labels = main.metadata.labels ?? [:]
        labels[managedByLabel] = "sluice"
        metadata.labels = labels
        var annotations = (main.metadata.annotations ?? [:]).filter { key, _ in
            !key.hasPrefix("nginx.ingress.kubernetes.io/canary")
                && key != "kubectl.kubernetes.io/last-applied-configuration"
        }
        annotations[canaryAnnotation] = "true"
        annotations[weightAnnotation] = String(weight)
        metadata.annotations = annotations
        if let uid = main.metadata.uid {
            // Deleting the main Ingress takes the canary with it.
            metadata.additional["ownerReferences"] = .array([
                .object([
                    "apiVersion": .string(Ingress.resource.apiVersion), "kind": .string(Ingress.resource.kind),
                    "name": .string(mainName), "uid": .string(uid),
                ])
            ])
        }
        return Ingress(metadata: metadata, spec: spec)
    }

    /// The canary share NGINX applies for `canary`: 0 unless `canary: "true"`, else
    /// `canary-weight` out of `canary-weight-total` (default 100), rounded. Nil when unreadable.
    static func percent(of canary: Ingress) -> Int? {
        let annotations = canary.metadata.annotations ?? [:]
        guard annotations[canaryAnnotation] == "true" else { return 0 }
        guard let weight = Int(annotations[weightAnnotation] ?? "0"), weight >= 0,
            let total = Int(annotations[weightTotalAnnotation] ?? "100"), total > 0
        else { return nil }
        return TrafficSplit.percent(canary: min(weight, total), total: total)
    }
}
