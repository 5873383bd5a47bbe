import Foundation
import SluiceCore

/// The `target.deployment` workload: Sluice owns `<name>-canary`, built from the stable Deployment's pod
/// template with the new image, scaled to the capacity each stage's weight needs. Promotion changes the
/// stable Deployment's image and waits for it to roll out, keeping the pod template it replaced in an annotation
/// of the stable Deployment; rollback never touches the stable Deployment, except a bake's rollback, which
/// gives it that template back after the canary, running it, took all traffic (`PromotionUndo`).
public struct DeploymentWorkload: Workload {
    /// Deadlines and poll intervals.
    public struct Options: Sendable {
        /// How long a canary may take to become available after a change before it counts as failed; also the
        /// canary's `progressDeadlineSeconds`, so the Deployment controller reports it too.
        public var availabilityTimeout: Duration
        /// How long promotion may take for the stable Deployment to roll out the new image.
        public var promotionTimeout: Duration
        /// How often `waitUntilCanaryAvailable` and `promote` read the status.
        public var pollInterval: Duration
        /// Whether `promote` keeps the pod template it replaces (`previousTemplateAnnotation`): only a strategy with
        /// a bake needs it, to undo the promotion. Without one the annotations are not written (a pod template can
        /// be large, and a Deployment's annotations may hold 256 KiB in all) and an earlier one is removed.
        public var keepPreviousTemplate: Bool

        public init(
            availabilityTimeout: Duration = .seconds(300), promotionTimeout: Duration = .seconds(600),
            pollInterval: Duration = .seconds(1), keepPreviousTemplate: Bool = false
        ) {
            self.availabilityTimeout = availabilityTimeout
            self.promotionTimeout = promotionTimeout
            self.pollInterval = pollInterval
            self.keepPreviousTemplate = keepPreviousTemplate
        }
    }

    /// The pod label that tells canary pods apart.
    public static let trackLabel = "sluice.dev/track"
    /// The label that marks objects Sluice created (it never changes one without it).
    public static let managedByLabel = "app.kubernetes.io/managed-by"
    /// The canary's annotation holding the version it runs.
    public static let versionAnnotation = "sluice.dev/version"
    /// The canary's annotation naming its stable Deployment.
    public static let stableAnnotation = "sluice.dev/stable"
    /// The stable Deployment's annotation holding, as JSON, the pod template it ran before Sluice's last promotion
    /// (what a bake's rollback restores).
    public static let previousTemplateAnnotation = "sluice.dev/previous-template"
    /// The stable Deployment's annotation naming the version whose promotion replaced that template.
    public static let previousTemplateOfAnnotation = "sluice.dev/previous-template-of"

    public let client: KubernetesClient
    public let namespace: String
    /// The stable Deployment.
    public let name: String
    /// The container whose image a rollout changes; nil means the first.
    public let container: String?
    public let options: Options

    public init(
        client: KubernetesClient, namespace: String, deployment: String, container: String? = nil,
        options: Options = .init()
    ) {
        self.client = client
        self.namespace = namespace
        self.name = deployment
        self.container = container
        self.options = options
    }

    /// `<name>-canary`.
    public var canaryName: String { name + "-canary" }

    private var deployments: ResourceClient<Deployment> { client.deployments(namespace) }
    private var stableRef: String { "\(namespace)/\(name)" }
    private var canaryRef: String { "\(namespace)/\(canaryName)" }

    // MARK: Workload

    /// Creates or updates the canary: the stable pod template with the new image, canary labels, a selector that
    /// cannot overlap the stable one, and ceil(stable replicas × weight / 100) replicas (at least 1). Returns once
    /// written; `canaryStatus` says when it is available.
    public func deployCanary(version: String, weight: Int) async throws {
        let stable = try await deployments.get(name)
        try await write(try canary(from: stable, template: try template(of: stable, version: version),
            version: version, weight: weight))
    }

    /// Creates the canary as `desired`, or updates the one Sluice made (replacing it when the stable selector
    /// changed, since selectors are immutable).
    private func write(_ desired: Deployment) async throws {
        for _ in 0..<3 {
            let existing: Deployment
            do {
                existing = try await deployments.get(canaryName)
            } catch let error as KubernetesError where error.code == .notFound {
                do {
                    _ = try await deployments.create(desired)
                    return
                } catch let error as KubernetesError where error.reason == "AlreadyExists" {
                    continue  // created meanwhile (a retried request, another replica): update it instead
                }
            }
            guard existing.metadata.labels?[Self.managedByLabel] == "sluice" else {
                throw KubernetesError(
                    .conflict,
                    "Deployment \(canaryRef) exists and is not managed by Sluice (no label "
                        + "\(Self.managedByLabel)=sluice); rename or delete it", reason: "NotManaged")
            }
            if existing.spec.selector != desired.spec.selector {
                // The stable selector changed (selectors are immutable): replace the canary.
                try await deleteCanary()
                continue
            }
            try await deployments.update(canaryName) { canary in
                canary.metadata.labels = desired.metadata.labels
                canary.metadata.annotations = (canary.metadata.annotations ?? [:])
                    .merging(desired.metadata.annotations ?? [:]) { _, new in new }
                canary.spec.replicas = desired.spec.replicas
                canary.spec.template = desired.spec.template
                canary.spec.progressDeadlineSeconds = desired.spec.progressDeadlineSeconds
                canary.spec.minReadySeconds = desired.spec.minReadySeconds
            }
            return
        }
        throw KubernetesError(.conflict, "Deployment \(canaryRef) kept changing while Sluice wrote it; will try again")
    }

    /// Ready when the Deployment controller has seen the latest canary spec and every wanted replica runs it and
    /// is available; failed when it passed its progress deadline (e.g. the image cannot be pulled).
    public func canaryStatus() async throws -> CanaryStatus {
        let canary: Deployment
        do {
            canary = try await deployments.get(canaryName)
        } catch let error as KubernetesError where error.code == .notFound {
            return .progressing("canary Deployment \(canaryRef) does not exist yet")
        }
        return Self.status(of: canary, ref: canaryRef, container: container)
    }

    /// Changes the stable Deployment's image to `version` and returns when it has rolled out. With
    /// `keepPreviousTemplate` (a strategy that bakes), the pod template it replaces is kept in the stable's
    /// annotations (`previousTemplateAnnotation`); a retried promotion, which finds the image changed already, keeps
    /// what the first attempt kept. Without it, a record an earlier promotion kept is removed.
    public func promote(version: String) async throws {
        let keep = options.keepPreviousTemplate
        let updated = try await deployments.update(name) { stable in
            let index = try Self.containerIndex(in: stable.spec.template.spec, named: container, of: stableRef)
            let current = stable.spec.template.spec.containers[index].image ?? ""
            let target = Self.image(current, version: version)
            var annotations = stable.metadata.annotations ?? [:]
            if keep, current != target || annotations[Self.previousTemplateOfAnnotation] != version {
                annotations[Self.previousTemplateAnnotation] = try Self.json(stable.spec.template)
                annotations[Self.previousTemplateOfAnnotation] = version
                stable.metadata.annotations = annotations
            } else if !keep, annotations[Self.previousTemplateAnnotation] != nil
                || annotations[Self.previousTemplateOfAnnotation] != nil
            {
                annotations[Self.previousTemplateAnnotation] = nil
                annotations[Self.previousTemplateOfAnnotation] = nil
                stable.metadata.annotations = annotations.isEmpty ? nil : annotations
            }
            stable.spec.template.spec.containers[index].image = target
        }
        try await waitUntilRolledOut(updated, what: "roll out \(try image(of: updated))")
    }

    /// Runs the pod template the stable Deployment had before `promoted` was promoted as the canary, with as many
    /// replicas as the stable (capacity for all traffic). `canaryStatus` says when it is available.
    public func deployPreviousCanary(promoted: String) async throws {
        let stable = try await deployments.get(name)
        let previous = try previousTemplate(of: stable, promoted: promoted)
        let index = try Self.containerIndex(in: previous.spec, named: container, of: stableRef)
        try await write(
            try canary(
                from: stable, template: previous, version: previous.spec.containers[index].image ?? "?", weight: 100))
    }

    /// Gives the stable Deployment back the pod template it had before `promoted` was promoted and returns when it
    /// has rolled out. Idempotent: once restored, writing the same template again changes nothing.
    public func restoreStable(promoted: String) async throws {
        let updated = try await deployments.update(name) { stable in
            let previous = try previousTemplate(of: stable, promoted: promoted)
            if stable.spec.template != previous { stable.spec.template = previous }
        }
        try await waitUntilRolledOut(updated, what: "roll back to \(try image(of: updated))")
    }

    /// The pod template kept by the promotion of `promoted`; a clear error when there is none or another
    /// promotion's (the Deployment was changed since, by hand or by a newer rollout).
    func previousTemplate(of stable: Deployment, promoted: String) throws -> PodTemplateSpec {
        let annotations = stable.metadata.annotations ?? [:]
        guard let kept = annotations[Self.previousTemplateAnnotation],
            annotations[Self.previousTemplateOfAnnotation] == promoted
        else {
            let other = annotations[Self.previousTemplateOfAnnotation].map { " (it keeps the one from before \($0))" }
            throw KubernetesError(
                .conflict,
                "Deployment \(stableRef) does not keep the pod template it had before \(promoted) was promoted"
                    + (other ?? "") + "; restore it by hand: kubectl rollout undo deployment/\(name) -n \(namespace)",
                reason: "NoPreviousTemplate")
        }
        do {
            return try JSONDecoder().decode(PodTemplateSpec.self, from: Data(kept.utf8))
        } catch {
            throw KubernetesError(
                .invalid,
                "Deployment \(stableRef): annotation \(Self.previousTemplateAnnotation) is not a pod template "
                    + "(\(error)); restore it by hand: kubectl rollout undo deployment/\(name) -n \(namespace)",
                reason: "NoPreviousTemplate")
        }
    }

    private static func json(_ template: PodTemplateSpec) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(template), as: UTF8.self)
    }

    private func image(of deployment: Deployment) throws -> String {
        let spec = deployment.spec.template.spec
        return spec.containers[try Self.containerIndex(in: spec, named: container, of: stableRef)].image ?? "?"
    }

    /// Polls the stable Deployment until it runs its latest spec everywhere (`promotionTimeout`).
    private func waitUntilRolledOut(_ updated: Deployment, what: String) async throws {
        try await waitUntil(timeout: options.promotionTimeout, what: "stable Deployment \(stableRef) to \(what)") {
            let stable = try await deployments.get(name)
            if let failure = Self.stalled(stable) {
                throw KubernetesError(.unavailable, failure, reason: "ProgressDeadlineExceeded")
            }
            return stable.isRolledOut
        }
    }

    /// Scales the canary to zero; nothing to do when it does not exist.
    public func scaleDownCanary() async throws {
        do {
            try await deployments.update(canaryName) { $0.spec.replicas = 0 }
        } catch let error as KubernetesError where error.code == .notFound {
            return
        }
    }

    // MARK: more than the protocol

    /// Polls `canaryStatus` until the canary is available; throws `unavailable` when it fails or the deadline
    /// (`availabilityTimeout` by default) passes. For callers that want to block; the controller polls instead.
    public func waitUntilCanaryAvailable(timeout: Duration? = nil) async throws {
        try await waitUntil(
            timeout: timeout ?? options.availabilityTimeout, what: "canary \(canaryRef) to be available"
        ) {
            switch try await canaryStatus() {
            case .ready: return true
            case .progressing: return false
            case .failed(let reason): throw KubernetesError(.unavailable, reason, reason: "CanaryFailed")
            }
        }
    }

    /// Deletes the canary Deployment (after a rollout, to clean up); nothing to do when it does not exist.
    public func deleteCanary() async throws {
        do {
            try await deployments.delete(canaryName)
        } catch let error as KubernetesError where error.code == .notFound {
            return
        }
    }

    /// Replicas the canary needs for `weight` percent of the stable's traffic: ceil(stable × weight / 100),
    /// at least 1.
    public static func canaryReplicas(stableReplicas: Int, weight: Int) -> Int {
        max(1, (stableReplicas * weight + 99) / 100)
    }

    /// The image `current` with its tag (or digest) replaced by `version`. A `version` holding a `/` is a whole
    /// image reference and replaces `current`; `sha256:...` becomes a digest.
    public static func image(_ current: String, version: String) -> String {
        if version.contains("/") { return version }
        var repository = current
        if let at = repository.firstIndex(of: "@") { repository = String(repository[..<at]) }
        if let colon = repository.lastIndex(of: ":"), !repository[colon...].contains("/") {
            repository = String(repository[..<colon])
        }
        return repository + (version.hasPrefix("sha256:") ? "@" : ":") + version
    }

    /// The canary's selector: the stable one with `sluice.dev/track: canary`. When the stable selector does not
    /// constrain that label (so it would also select canary pods), each of its values gets a `-canary` suffix.
    /// Either way no pod can match both selectors.
    public static func canarySelector(for stable: LabelSelector, of ref: String) throws -> [String: String] {
        guard stable.matchExpressions?.isEmpty ?? true else {
            throw KubernetesError(
                .invalid,
                "Deployment \(ref) selects pods with matchExpressions; Sluice needs a matchLabels selector "
                    + "to derive a canary selector that cannot overlap it")
        }
        var labels = stable.matchLabels ?? [:]
        guard !labels.isEmpty else { throw KubernetesError(.invalid, "Deployment \(ref) has an empty selector") }
        if let track = labels[trackLabel] {
            guard track != "canary" else {
                throw KubernetesError(.invalid, "Deployment \(ref) selects \(trackLabel)=canary; the stable must not")
            }
        } else {
            for (key, value) in labels {
                let suffixed = value + "-canary"
                guard suffixed.count <= 63 else {
                    throw KubernetesError(
                        .invalid,
                        "Deployment \(ref): label \(key)=\(value) is too long to add -canary (63 at most); "
                            + "add \(trackLabel): stable to its selector instead")
                }
                labels[key] = suffixed
            }
        }
        labels[trackLabel] = "canary"
        return labels
    }

    /// Whether some pod labels could match both selectors (matchLabels only).
    public static func selectorsOverlap(_ a: [String: String], _ b: [String: String]) -> Bool {
        !a.contains { key, value in b[key].map { $0 != value } ?? false }
    }

    // MARK: internals

    /// The stable's pod template with `version`'s image.
    func template(of stable: Deployment, version: String) throws -> PodTemplateSpec {
        var template = stable.spec.template
        let index = try Self.containerIndex(in: template.spec, named: container, of: stableRef)
        template.spec.containers[index].image = Self.image(
            template.spec.containers[index].image ?? "", version: version)
        return template
    }

    /// The canary Deployment wanted to run `template` (labelled `version`) at `weight`.
    func canary(from stable: Deployment, template: PodTemplateSpec, version: String, weight: Int) throws -> Deployment {
        let selector = try Self.canarySelector(for: stable.spec.selector, of: stableRef)
        guard !Self.selectorsOverlap(selector, stable.spec.selector.matchLabels ?? [:]) else {
            throw KubernetesError(.invalid, "the canary selector of \(stableRef) would overlap the stable one")
        }
        var template = template
        var podMeta = template.metadata ?? ObjectMeta()
        podMeta.labels = (podMeta.labels ?? [:]).merging(selector) { _, canary in canary }
        template.metadata = podMeta

        var labels = stable.metadata.labels ?? [:]
        labels[Self.trackLabel] = "canary"
        labels[Self.managedByLabel] = "sluice"
        var spec = DeploymentSpec(
            replicas: Self.canaryReplicas(stableReplicas: stable.desiredReplicas, weight: weight),
            selector: LabelSelector(matchLabels: selector), template: template)
        spec.progressDeadlineSeconds = max(1, Int((options.availabilityTimeout.milliseconds + 999) / 1000))
        spec.minReadySeconds = stable.spec.minReadySeconds
        if let strategy = stable.spec.additional["strategy"] { spec.additional["strategy"] = strategy }
        return Deployment(
            metadata: ObjectMeta(
                name: canaryName, namespace: namespace, labels: labels,
                annotations: [Self.versionAnnotation: version, Self.stableAnnotation: name]),
            spec: spec)
    }

    static func containerIndex(in spec: PodSpec, named container: String?, of ref: String) throws -> Int {
        guard let container else {
            guard !spec.containers.isEmpty else {
                throw KubernetesError(.invalid, "Deployment \(ref) has no containers")
            }
            return 0
        }
        guard let index = spec.containers.firstIndex(where: { $0.name == container }) else {
            let names = spec.containers.map(\.name).joined(separator: ", ")
            throw KubernetesError(
                .invalid, "Deployment \(ref) has no container named \"\(container)\" (it has: \(names))")
        }
        return index
    }

    static func status(of canary: Deployment, ref: String, container: String?) -> CanaryStatus {
        let wanted = canary.desiredReplicas
        let available = canary.status?.availableReplicas ?? 0
        let image =
            (try? containerIndex(in: canary.spec.template.spec, named: container, of: ref))
            .flatMap { canary.spec.template.spec.containers[$0].image } ?? "?"
        if let failure = stalled(canary) { return .failed(failure) }
        if canary.isRolledOut { return .ready }
        if (canary.status?.observedGeneration ?? 0) < (canary.metadata.generation ?? 1) {
            return .progressing("waiting for the Deployment controller to see the new spec of \(ref)")
        }
        return .progressing("\(available) of \(wanted) replicas of \(ref) (\(image)) available")
    }

    /// The reason a Deployment stopped progressing, when its controller says so.
    static func stalled(_ deployment: Deployment) -> String? {
        guard let condition = deployment.status?.condition("Progressing"), condition.status == "False",
            condition.reason == "ProgressDeadlineExceeded"
        else { return nil }
        let ref = "\(deployment.metadata.namespace ?? "")/\(deployment.metadata.name ?? "")"
        let images = deployment.spec.template.spec.containers.compactMap(\.image).joined(separator: ", ")
        let available = deployment.status?.availableReplicas ?? 0
        return "Deployment \(ref) did not become available within its progress deadline "
            + "(\(deployment.spec.progressDeadlineSeconds ?? 600)s): \(available) of \(deployment.desiredReplicas) "
            + "replicas available running \(images) (an image that cannot be pulled, a crash loop?); "
            + "see kubectl describe deployment -n \(deployment.metadata.namespace ?? "") "
            + (deployment.metadata.name ?? "")
    }

    /// Polls `condition` every `pollInterval` until it is true; throws `unavailable` after `timeout`.
    private func waitUntil(timeout: Duration, what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            if try await condition() { return }
            guard ContinuousClock.now < deadline else {
                throw KubernetesError(.unavailable, "timed out after \(timeout) waiting for \(what)", reason: "Timeout")
            }
            try await Task.sleep(for: options.pollInterval)  // poll interval of a deadline-bounded wait
        }
    }
}
