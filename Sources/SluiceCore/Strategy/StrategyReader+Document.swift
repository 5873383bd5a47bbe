import Yams

/// The strategy-v1 rules, section by section. Each `read...` reports what is wrong and returns nil
/// when it cannot build its part; `readStrategy` returns a strategy only if its document had no error.
extension StrategyReader {
    static let documentKeys = ["apiVersion", "kind", "metadata", "spec"]
    static let metadataKeys = ["name", "namespace", "labels"]
    static let specKeys = ["target", "traffic", "stages", "analysis", "rollback", "notifications", "bake"]
    static let targetKeys = ["deployment", "container", "upstreams"]
    static let routerKeys = TrafficRoute.Kind.allCases.map(\.rawValue)
    static let stageKeys = ["name", "weight", "hold", "pause", "checks"]
    static let analysisKeys = ["interval", "failureLimit", "noDataLimit", "onNoData", "providers", "checks"]
    static let checkKeys = ["name", "provider", "query", "max", "min", "minCount", "compare"]
    static let minCountKeys = ["query", "min"]
    static let compareKeys = [
        "kind", "canary", "baseline", "maxIncrease", "maxDecrease", "slowerThan", "alpha", "minRequests",
    ]
    static let providerKinds = ProviderConfig.Kind.allCases.map(\.rawValue)

    /// The strategy of one document, where it starts, and its `metadata.name` node.
    func readStrategy(_ root: Node) -> (Strategy, SourcePosition, Node)? {
        let before = errors.count
        guard let doc = mapping(root, "", known: Self.documentKeys) else { return nil }
        if let node = required(doc, "apiVersion"), let value = string(node, "apiVersion"),
           value != StrategyLoader.apiVersion
        {
            report(
                .invalidValue, at: node, "apiVersion",
                "unsupported apiVersion \(StrategyRules.quoted(value)); expected \"\(StrategyLoader.apiVersion)\""
            )
        }
        if let node = required(doc, "kind"), let value = string(node, "kind"), value != StrategyLoader.kind {
            report(.invalidValue, at: node, "kind", "unsupported kind \(StrategyRules.quoted(value)); expected \"Strategy\"")
        }
        let metadata = required(doc, "metadata").flatMap(readMetadata)
        let spec = required(doc, "spec").flatMap(readSpec)
        guard errors.count == before, let metadata, let spec else { return nil }
        let strategy = Strategy(
            name: metadata.name, namespace: metadata.namespace, labels: metadata.labels, target: spec.target,
            traffic: spec.traffic, stages: spec.stages, analysis: spec.analysis, rollback: spec.rollback,
            notifications: spec.notifications, bake: spec.bake
        )
        let position = SourcePosition(file: file, line: root.mark?.line ?? 1, column: root.mark?.column ?? 1)
        return (strategy, position, metadata.nameNode)
    }

    /// `metadata.namespace`/`metadata.name` of one document and the name's node, by `readStrategy`'s rules for
    /// them; nil (with the reason in `errors`) when they cannot be read. The rest of the document is not checked.
    func readKey(_ root: Node) -> (StrategyKey, Node)? {
        guard let doc = mapping(root, "", known: Self.documentKeys),
              let metadata = required(doc, "metadata").flatMap(readMetadata)
        else { return nil }
        return (StrategyKey(namespace: metadata.namespace, name: metadata.name), metadata.nameNode)
    }

    // MARK: metadata

    private func readMetadata(_ node: Node) -> (name: String, namespace: String, labels: [String: String], nameNode: Node)? {
        guard let fields = mapping(node, "metadata", known: Self.metadataKeys) else { return nil }
        let nameNode = required(fields, "name")
        let name = nameNode.flatMap { string($0, "metadata.name", rule: { StrategyRules.dnsLabel($0) }) }
        var namespace: String? = "default"
        if let node = fields["namespace"] {
            namespace = string(node, "metadata.namespace", rule: { StrategyRules.dnsLabel($0) })
        }
        var labels: [String: String]? = [:]
        if let node = fields["labels"] { labels = stringMap(node, "metadata.labels") }
        guard let nameNode, let name, let namespace, let labels else { return nil }
        return (name, namespace, labels, nameNode)
    }

    // MARK: spec

    private struct Spec {
        var target: Target
        var traffic: TrafficRoute
        var stages: [Stage]
        var analysis: Analysis
        var rollback: RollbackPolicy
        var notifications: [NotificationTarget]
        var bake: Bake?
    }

    private func readSpec(_ node: Node) -> Spec? {
        guard let fields = mapping(node, "spec", known: Self.specKeys) else { return nil }
        let target = required(fields, "target").flatMap(readTarget)
        let traffic = required(fields, "traffic").flatMap { readTraffic($0, target: target) }
        var analysisPart = AnalysisPart(analysis: Analysis(), checkNames: [:], providerNames: [])
        if let node = fields["analysis"] { analysisPart = readAnalysis(node) }
        let stages = required(fields, "stages").flatMap { readStages($0, analysis: analysisPart) }
        var rollback: RollbackPolicy? = RollbackPolicy()
        if let node = fields["rollback"] {
            let automatic = mapping(node, "spec.rollback", known: ["automatic"])
                .map { optional($0["automatic"]) { self.bool($0, "spec.rollback.automatic") } }
            if case .some(.some(let value)) = automatic {
                rollback = RollbackPolicy(automatic: value ?? true)
            } else {
                rollback = nil
            }
        }
        var notifications: [NotificationTarget]? = []
        if let node = fields["notifications"] { notifications = readNotifications(node) }
        var bake: Bake?? = .some(nil)
        if let node = fields["bake"] {
            bake = readBake(node, interval: analysisPart.intervalValid ? analysisPart.analysis.interval : nil)
        }
        if case .some(.some) = bake, let stages, let last = stages.indices.last, let node = fields["bake"],
            analysisPart.valid,
            !analysisPart.analysis.checks.contains(where: { $0.compare == nil }),
            !stages[last].checks.contains(where: { $0.compare == nil })
        {
            report(
                .invalidValue, at: node, "spec.bake",
                "a bake needs a threshold check (max or min) in the last stage: comparisons need a baseline, "
                    + "and after promotion no other version takes traffic")
            bake = nil
        }
        guard let target, let traffic, let stages, analysisPart.valid, let rollback,
              let notifications, let bake
        else { return nil }
        return Spec(
            target: target, traffic: traffic, stages: stages, analysis: analysisPart.analysis, rollback: rollback,
            notifications: notifications, bake: bake
        )
    }

    /// `spec.bake: {duration: 10m}`: at least one analysis interval. Both targets can undo a promotion traffic
    /// first: an `upstreams` target swaps its pools back, a Deployment gets back the pod template it had before.
    private func readBake(_ node: Node, interval: Duration?) -> Bake?? {
        let path = "spec.bake"
        guard let f = mapping(node, path, known: ["duration"]) else { return nil }
        guard let durationNode = required(f, "duration"),
            let duration = duration(durationNode, f.path("duration"), minimum: interval ?? .milliseconds(1))
        else { return nil }
        return .some(Bake(duration: duration))
    }

    // MARK: target

    private func readTarget(_ node: Node) -> Target? {
        let path = "spec.target"
        guard let fields = mapping(node, path, known: Self.targetKeys) else { return nil }
        switch (fields["deployment"], fields["upstreams"]) {
        case (nil, nil):
            if fields.suggested.isDisjoint(with: ["deployment", "upstreams"]) {
                report(.missingKey, at: node, path, "needs exactly one of \"deployment\" or \"upstreams\"")
            }
            return nil
        case (_?, let upstreams?):
            report(
                .conflict, at: fields.keys["upstreams"] ?? upstreams, path + ".upstreams",
                "a target is either a deployment or upstreams, not both"
            )
            return nil
        case (let deployment?, nil):
            // `<deployment>-canary` must be a valid name too.
            let name = string(deployment, path + ".deployment", rule: { StrategyRules.dnsLabel($0, maxLength: 56) })
            let container = optional(fields["container"]) {
                self.string($0, path + ".container", rule: { StrategyRules.dnsLabel($0) })
            }
            guard let name, let container else { return nil }
            return .deployment(name: name, container: container)
        case (nil, let upstreams?):
            if let containerKey = fields.keys["container"] {
                report(.conflict, at: containerKey, path + ".container", "container applies to a deployment target only")
            }
            return readUpstreams(upstreams, path + ".upstreams")
        }
    }

    private func readUpstreams(_ node: Node, _ path: String) -> Target? {
        guard let fields = mapping(node, path, known: ["stable", "canary", "health"]) else { return nil }
        var seen: [String: String] = [:]
        var pools: [String: [String]] = [:]
        var ok = true
        for pool in ["stable", "canary"] {
            let poolPath = path + "." + pool
            guard let poolNode = required(fields, pool), let items = sequence(poolNode, poolPath) else {
                ok = false
                continue
            }
            if items.isEmpty {
                report(.invalidValue, at: poolNode, poolPath, "needs at least one host:port")
                ok = false
            }
            var addresses: [String] = []
            for (index, item) in items.enumerated() where !isSaturated {
                let itemPath = "\(poolPath)[\(index)]"
                guard let address = string(item, itemPath, rule: StrategyRules.hostPort) else {
                    ok = false
                    continue
                }
                if let other = seen[address] {
                    report(.conflict, at: item, itemPath, "\(address) is already listed in \(other)")
                    ok = false
                }
                seen[address] = poolPath
                addresses.append(address)
            }
            pools[pool] = addresses
        }
        let health = optional(fields["health"]) { self.readHealth($0, path + ".health") }
        guard ok, let stable = pools["stable"], let canary = pools["canary"], let health else { return nil }
        return .upstreams(stable: stable, canary: canary, health: health)
    }

    static let healthKeys = ["path", "scheme", "expect", "timeout", "version", "failureThreshold"]

    /// `upstreams.health`: the probe of every canary member (docs/strategy.md "Health of an upstreams canary").
    private func readHealth(_ node: Node, _ path: String) -> HealthCheck? {
        guard let f = mapping(node, path, known: Self.healthKeys) else { return nil }
        let probePath = required(f, "path").flatMap { string($0, f.path("path"), rule: StrategyRules.httpPath) }
        let scheme = optional(f["scheme"]) {
            self.string($0, f.path("scheme"), rule: { ["http", "https"].contains($0) ? nil : "must be http or https, got \(StrategyRules.quoted($0))" })
        }
        let expect = optional(f["expect"]) { self.integer($0, f.path("expect"), in: 100...599) }
        // A probe must end well inside one observation of the controller (15 s by default).
        let timeout = optional(f["timeout"]) { node -> Duration? in
            guard let value = self.duration(node, f.path("timeout"), minimum: .milliseconds(1)) else { return nil }
            guard value <= .seconds(10) else {
                self.report(.invalidValue, at: node, f.path("timeout"), "must be at most 10s, got \(value.goString)")
                return nil
            }
            return value
        }
        let threshold = optional(f["failureThreshold"]) { self.integer($0, f.path("failureThreshold"), in: 1...100) }
        let version = optional(f["version"]) { self.readVersionProbe($0, f.path("version")) }
        guard let probePath, let scheme, let expect, let timeout, let threshold, let version else { return nil }
        return HealthCheck(
            scheme: scheme ?? "http", path: probePath, expect: expect ?? 200, timeout: timeout ?? .seconds(2),
            version: version, failureThreshold: threshold ?? 3)
    }

    private func readVersionProbe(_ node: Node, _ path: String) -> VersionProbe? {
        let kinds = ["header", "jsonPath"]
        guard let f = mapping(node, path, known: kinds) else { return nil }
        switch (f["header"], f["jsonPath"]) {
        case (let header?, nil):
            return string(header, f.path("header"), rule: StrategyRules.headerName).map(VersionProbe.header)
        case (nil, let jsonPath?):
            return string(jsonPath, f.path("jsonPath"), rule: StrategyRules.dottedPath).map(VersionProbe.jsonPath)
        case (_?, _?):
            report(.conflict, at: f.keys["jsonPath"], f.path("jsonPath"), "version is read from a header or a jsonPath, not both")
        case (nil, nil):
            if f.suggested.isDisjoint(with: kinds) {
                report(.missingKey, at: node, path, "needs one of \"header\" (e.g. X-Version) or \"jsonPath\" (e.g. version)")
            }
        }
        return nil
    }

    // MARK: traffic

    private func readTraffic(_ node: Node, target: Target?) -> TrafficRoute? {
        let path = "spec.traffic"
        guard let fields = mapping(node, path, known: Self.routerKeys) else { return nil }
        let present = Self.routerKeys.filter { fields[$0] != nil }
        guard present.count == 1, let kind = present.first, let routerNode = fields[kind] else {
            if present.isEmpty {
                if fields.suggested.isDisjoint(with: Self.routerKeys) {
                    report(.missingKey, at: node, path, "needs one router: \(StrategyRules.alternatives(Self.routerKeys))")
                }
            } else {
                let second = present[1]
                report(
                    .conflict, at: fields.keys[second], path + "." + second,
                    "only one router per strategy; found \(present.joined(separator: " and "))"
                )
            }
            return nil
        }
        let routerPath = path + "." + kind
        checkFit(router: kind, target: target, at: fields.keys[kind], routerPath)
        // Exhaustive over `TrafficRoute.Kind`: a router added to the enum does not compile until it is read here.
        switch TrafficRoute.Kind(rawValue: kind) {
        case nil:
            return nil
        case .gatewayAPI:
            guard let f = mapping(routerNode, routerPath, known: ["httpRoute", "stableService", "canaryService"])
            else { return nil }
            let route = required(f, "httpRoute").flatMap { string($0, f.path("httpRoute"), rule: { StrategyRules.dnsSubdomain($0) }) }
            let stable = required(f, "stableService").flatMap { string($0, f.path("stableService"), rule: { StrategyRules.dnsLabel($0) }) }
            let canary = required(f, "canaryService").flatMap { string($0, f.path("canaryService"), rule: { StrategyRules.dnsLabel($0) }) }
            guard let route, let stable, let canary else { return nil }
            guard stable != canary else {
                report(.conflict, at: f["canaryService"], f.path("canaryService"), "must differ from stableService")
                return nil
            }
            return .gatewayAPI(httpRoute: route, stableService: stable, canaryService: canary)
        case .nginxIngress:
            guard let f = mapping(routerNode, routerPath, known: ["ingress", "canaryService"]) else { return nil }
            // Sluice manages `<ingress>-canary`, which must be a valid name too.
            let ingress = required(f, "ingress").flatMap {
                string($0, f.path("ingress"), rule: { StrategyRules.dnsSubdomain($0, maxLength: 246) })
            }
            let canary = required(f, "canaryService").flatMap { string($0, f.path("canaryService"), rule: { StrategyRules.dnsLabel($0) }) }
            guard let ingress, let canary else { return nil }
            return .nginxIngress(ingress: ingress, canaryService: canary)
        case .caddy:
            guard let f = mapping(routerNode, routerPath, known: ["adminURL", "handlerID"]) else { return nil }
            let admin = required(f, "adminURL").flatMap { string($0, f.path("adminURL"), rule: StrategyRules.httpURL) }
            let handler = required(f, "handlerID").flatMap {
                string($0, f.path("handlerID"), rule: { value in
                    value.isEmpty || value.contains(where: \.isWhitespace)
                        ? "the handler's @id must be non-empty, without spaces" : nil
                })
            }
            guard let admin, let handler else { return nil }
            return .caddy(adminURL: admin, handlerID: handler)
        case .awsALB:
            return readALB(routerNode, routerPath)
        }
    }

    private func readALB(_ node: Node, _ path: String) -> TrafficRoute? {
        let keys = ["region", "listenerARN", "stableTargetGroupARN", "canaryTargetGroupARN", "endpoint"]
        guard let f = mapping(node, path, known: keys) else { return nil }
        let region = required(f, "region").flatMap { string($0, f.path("region"), rule: StrategyRules.awsRegion) }
        let listener = required(f, "listenerARN").flatMap {
            string($0, f.path("listenerARN"), rule: { StrategyRules.elbARN($0, resource: "listener", region: region) })
        }
        let stable = required(f, "stableTargetGroupARN").flatMap {
            string($0, f.path("stableTargetGroupARN"), rule: { StrategyRules.elbARN($0, resource: "targetgroup", region: region) })
        }
        let canary = required(f, "canaryTargetGroupARN").flatMap {
            string($0, f.path("canaryTargetGroupARN"), rule: { StrategyRules.elbARN($0, resource: "targetgroup", region: region) })
        }
        let endpoint = optional(f["endpoint"]) { self.string($0, f.path("endpoint"), rule: StrategyRules.httpURL) }
        guard let region, let listener, let stable, let canary, let endpoint else { return nil }
        guard stable != canary else {
            report(.conflict, at: f["canaryTargetGroupARN"], f.path("canaryTargetGroupARN"), "must differ from stableTargetGroupARN")
            return nil
        }
        return .awsALB(
            ALBRoute(region: region, listenerARN: listener, stableTargetGroupARN: stable, canaryTargetGroupARN: canary, endpoint: endpoint)
        )
    }

    /// Gateway API and NGINX Ingress route to Kubernetes Services, so they need a deployment; Caddy
    /// balances `host:port` pools, so it needs upstreams; an ALB's target groups can hold either.
    private func checkFit(router: String, target: Target?, at node: Node?, _ path: String) {
        switch (router, target) {
        case ("gatewayAPI", .upstreams?), ("nginxIngress", .upstreams?):
            report(
                .conflict, at: node, path,
                "\(router) routes to Kubernetes Services and needs a deployment target, not upstreams"
            )
        case ("caddy", .deployment?):
            report(.conflict, at: node, path, "caddy balances host:port pools and needs an upstreams target, not a deployment")
        default:
            break
        }
    }

    // MARK: stages

    private func readStages(_ node: Node, analysis: AnalysisPart) -> [Stage]? {
        let path = "spec.stages"
        guard let items = sequence(node, path) else { return nil }
        guard !items.isEmpty else {
            report(.invalidValue, at: node, path, "needs at least one stage")
            return nil
        }
        var stages: [Stage] = []
        var ok = true
        var previousWeight: Int?
        var stageNames: [String: Int] = [:]
        for (index, item) in items.enumerated() where !isSaturated {
            let stagePath = "\(path)[\(index)]"
            let isLast = index == items.count - 1
            guard let f = mapping(item, stagePath, known: Self.stageKeys) else {
                ok = false
                continue
            }
            // `name` is optional: a stage without one is `stage-N`, N counted from 1 as `sluice status` shows it.
            var name: String?
            if let nameNode = f["name"] {
                name = string(nameNode, f.path("name"), rule: { StrategyRules.dnsLabel($0) })
            } else {
                name = "stage-\(index + 1)"
            }
            if let stageName = name {
                let nameNode = f["name"] ?? item
                if let line = stageNames[stageName] {
                    report(
                        .conflict, at: nameNode, f.path("name"),
                        f["name"] == nil
                            ? "this stage's default name \"\(stageName)\" is taken (at line \(line)); give it a name"
                            : "duplicate stage name \"\(stageName)\" (first at line \(line))")
                    name = nil
                }
                stageNames[stageName] = nameNode.mark?.line ?? 1
            }
            var weight = required(f, "weight").flatMap { integer($0, f.path("weight"), in: 1...100) }
            if let value = weight, let weightNode = f["weight"] {
                if let previousWeight, value <= previousWeight {
                    report(
                        .invalidValue, at: weightNode, f.path("weight"),
                        "\(value) is not greater than the previous stage's \(previousWeight)"
                    )
                    weight = nil
                } else if isLast, value != 100 {
                    report(.invalidValue, at: weightNode, f.path("weight"), "the last stage must have weight 100, got \(value)")
                    weight = nil
                }
                previousWeight = value
            }
            let pause = f["pause"].map { bool($0, f.path("pause")) } ?? false
            let interval = analysis.intervalValid ? analysis.analysis.interval : nil
            var hold: Duration?? = .some(nil)
            if let holdNode = f["hold"] {
                hold = duration(holdNode, f.path("hold"), minimum: interval ?? .zero).map { .some($0) }
                if pause == true {
                    report(.conflict, at: f.keys["hold"], f.path("hold"), "a stage has either hold or pause: true, not both")
                    hold = nil
                }
            } else if pause == false {
                if isLast {
                    // The last stage may omit its hold: it then ends after one interval of passing checks.
                    hold = interval.map { .some($0) }
                } else {
                    report(.missingKey, at: item, stagePath, "needs hold (a duration such as 30m) or pause: true")
                    hold = nil
                }
            }
            var checks: [Check]? = []
            if let checksNode = f["checks"] {
                var names = analysis.checkNames
                checks = readChecks(checksNode, f.path("checks"), providers: analysis.providerNames, names: &names)
            }
            guard let name, let weight, let pause, let hold, let checks else {
                ok = false
                continue
            }
            stages.append(Stage(name: name, weight: weight, hold: hold, pause: pause, checks: checks))
        }
        return ok ? stages : nil
    }

    // MARK: analysis

    struct AnalysisPart {
        var analysis: Analysis
        /// Check name -> line, for uniqueness across analysis and stage checks.
        var checkNames: [String: Int]
        /// Every declared provider key, valid or not (so a bad provider does not also fail its checks).
        var providerNames: [String]
        /// False when the section had an error (the strategy then fails; stages are still checked).
        var valid = true
        /// False when `interval` itself was wrong, so holds are not compared with it.
        var intervalValid = true
    }

    private func readAnalysis(_ node: Node) -> AnalysisPart {
        let path = "spec.analysis"
        guard let f = mapping(node, path, known: Self.analysisKeys) else {
            return AnalysisPart(analysis: Analysis(), checkNames: [:], providerNames: [], valid: false)
        }
        var ok = true
        var intervalValid = true
        var analysis = Analysis()
        if let node = f["interval"] {
            if let value = duration(node, f.path("interval"), minimum: .seconds(1)) {
                analysis.interval = value
            } else {
                ok = false
                intervalValid = false
            }
        }
        if let node = f["failureLimit"] {
            if let value = integer(node, f.path("failureLimit"), in: 1...Int.max) { analysis.failureLimit = value } else { ok = false }
        }
        if let node = f["noDataLimit"] {
            if let value = integer(node, f.path("noDataLimit"), in: 1...Int.max) { analysis.noDataLimit = value } else { ok = false }
        }
        if let node = f["onNoData"], let text = string(node, f.path("onNoData")) {
            if let action = NoDataAction(rawValue: text) {
                analysis.onNoData = action
            } else {
                report(
                    .invalidValue, at: node, f.path("onNoData"),
                    "\(StrategyRules.quoted(text)) is not one of \(StrategyRules.alternatives(NoDataAction.allCases.map(\.rawValue)))"
                )
                ok = false
            }
        } else if f["onNoData"] != nil {
            ok = false
        }
        var providerNames: [String] = []
        if let node = f["providers"], let entries = namedEntries(node, f.path("providers")) {
            providerNames = entries.map(\.key)
            for entry in entries {
                let entryPath = f.path("providers") + "." + entry.key
                if let problem = StrategyRules.dnsLabel(entry.key) {
                    report(.invalidValue, at: entry.keyNode, entryPath, problem)
                    ok = false
                }
                if let provider = readProvider(entry.value, entryPath, interval: analysis.interval) {
                    analysis.providers[entry.key] = provider
                } else {
                    ok = false
                }
            }
        } else if f["providers"] != nil {
            ok = false
        }
        var names: [String: Int] = [:]
        if let node = f["checks"] {
            if let checks = readChecks(node, f.path("checks"), providers: providerNames, names: &names) {
                analysis.checks = checks
            } else {
                ok = false
            }
        }
        return AnalysisPart(
            analysis: analysis, checkNames: names, providerNames: providerNames, valid: ok, intervalValid: intervalValid
        )
    }

    private func readProvider(_ node: Node, _ path: String, interval: Duration) -> ProviderConfig? {
        guard let f = mapping(node, path, known: Self.providerKinds) else { return nil }
        let present = Self.providerKinds.filter { f[$0] != nil }
        guard present.count == 1, let kind = present.first, let config = f[kind] else {
            if present.isEmpty {
                if f.suggested.isDisjoint(with: Self.providerKinds) {
                    report(.missingKey, at: node, path, "needs one provider kind: \(StrategyRules.alternatives(Self.providerKinds))")
                }
            } else {
                report(.conflict, at: f.keys[present[1]], path + "." + present[1], "a provider has exactly one kind")
            }
            return nil
        }
        let configPath = path + "." + kind
        // A sample must be answered before the next one is due.
        let timeoutRule: (Node) -> Duration? = { node in
            guard let value = self.duration(node, configPath + ".timeout", minimum: .milliseconds(1)) else { return nil }
            guard value <= interval else {
                self.report(
                    .invalidValue, at: node, configPath + ".timeout",
                    "\(value.goString) is longer than analysis.interval \(interval.goString)"
                )
                return nil
            }
            return value
        }
        // Exhaustive over `ProviderConfig.Kind`: a provider added to the enum does not compile until it is read here.
        switch ProviderConfig.Kind(rawValue: kind) {
        case nil:
            return nil
        case .prometheus:
            guard let c = mapping(config, configPath, known: ["address", "timeout", "headers", "bearerTokenFile"]) else { return nil }
            let address = required(c, "address").flatMap { string($0, c.path("address"), rule: StrategyRules.httpURL) }
            let timeout = c["timeout"].map(timeoutRule) ?? min(.seconds(5), interval)
            let headers = c["headers"].map { readHeaders($0, c.path("headers")) } ?? [:]
            let tokenFile = optional(c["bearerTokenFile"]) {
                self.string($0, c.path("bearerTokenFile"), rule: { $0.isEmpty ? "must be a file path" : nil })
            }
            guard let address, let timeout, let headers, let tokenFile else { return nil }
            return .prometheus(PrometheusConfig(address: address, timeout: timeout, headers: headers, bearerTokenFile: tokenFile))
        case .web:
            guard let c = mapping(config, configPath, known: ["url", "jsonPath", "headers", "timeout"]) else { return nil }
            let url = required(c, "url").flatMap { string($0, c.path("url"), rule: StrategyRules.httpURL) }
            let jsonPath = required(c, "jsonPath").flatMap {
                string($0, c.path("jsonPath"), rule: { value in
                    value.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty)
                        ? "\(StrategyRules.quoted(value)) is not a dotted path such as data.value or items.0.ratio" : nil
                })
            }
            let timeout = c["timeout"].map(timeoutRule) ?? min(.seconds(5), interval)
            let headers = c["headers"].map { readHeaders($0, c.path("headers")) } ?? [:]
            guard let url, let jsonPath, let timeout, let headers else { return nil }
            return .web(WebConfig(url: url, jsonPath: jsonPath, headers: headers, timeout: timeout))
        }
    }

    /// `headers`: a name to a string, `{fromEnv: VARIABLE}` or `{fromFile: PATH}`. An error never quotes a
    /// written value: it may be a key.
    private func readHeaders(_ node: Node, _ path: String) -> [String: HeaderValue]? {
        stringMap(node, path) { readHeader($0, $1) }
    }

    /// A letter or `_`, then letters, digits and `_` (what a shell exports).
    private static func environmentVariable(_ name: String) -> String? {
        let valid =
            name.first.map { $0 == "_" || $0.isLetter } == true
            && name.unicodeScalars.allSatisfy {
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_")
            }
        return valid ? nil : "\(StrategyRules.quoted(name)) is not an environment variable name (letters, digits, _)"
    }

    private func readHeader(_ node: Node, _ path: String) -> HeaderValue? {
        guard case .mapping = node else {
            guard node.scalar != nil, let text = string(node, path, showingValue: false) else {
                if node.scalar == nil {
                    report(
                        .wrongType, at: node, path,
                        "expected a string, {fromEnv: VARIABLE} or {fromFile: PATH}, got \(describe(node))")
                }
                return nil
            }
            return .value(text)
        }
        guard let f = mapping(node, path, known: ["fromEnv", "fromFile"]) else { return nil }
        switch (f["fromEnv"], f["fromFile"]) {
        case (let name?, nil):
            return string(name, f.path("fromEnv"), rule: Self.environmentVariable).map(HeaderValue.fromEnv)
        case (nil, let file?):
            return string(file, f.path("fromFile"), rule: { $0.isEmpty ? "must be a file path" : nil })
                .map(HeaderValue.fromFile)
        case (_?, _?):
            report(
                .conflict, at: f.keys["fromFile"], f.path("fromFile"),
                "a header's value comes from fromEnv or fromFile, not both")
            return nil
        case (nil, nil):
            if f.suggested.isEmpty {
                report(.missingKey, at: node, path, "needs fromEnv or fromFile (or the value as a string)")
            }
            return nil
        }
    }

    // MARK: checks

    /// Checks of `analysis.checks` or of a stage; `names` holds the names already taken.
    private func readChecks(_ node: Node, _ path: String, providers: [String]?, names: inout [String: Int]) -> [Check]? {
        guard let items = sequence(node, path) else { return nil }
        var checks: [Check] = []
        var ok = true
        for (index, item) in items.enumerated() where !isSaturated {
            let checkPath = "\(path)[\(index)]"
            if let check = readCheck(item, checkPath, providers: providers, names: &names) {
                checks.append(check)
            } else {
                ok = false
            }
        }
        return ok ? checks : nil
    }

    private func readCheck(_ node: Node, _ path: String, providers: [String]?, names: inout [String: Int]) -> Check? {
        guard let f = mapping(node, path, known: Self.checkKeys) else { return nil }
        var name = required(f, "name").flatMap { string($0, f.path("name"), rule: { StrategyRules.dnsLabel($0) }) }
        if let checkName = name, let nameNode = f["name"] {
            if let line = names[checkName] {
                report(.conflict, at: nameNode, f.path("name"), "duplicate check name \"\(checkName)\" (first at line \(line))")
                name = nil
            } else {
                names[checkName] = nameNode.mark?.line ?? 1
            }
        }
        let provider = readProviderReference(f, providers: providers)
        if let compareNode = f["compare"] {
            for key in ["query", "max", "min", "minCount"] where f.keys[key] != nil {
                report(
                    .conflict, at: f.keys[key], f.path(key),
                    "a compare check has no \(key): the comparison with stable is its test")
                return nil
            }
            guard let compare = readComparison(compareNode, f.path("compare")), let name, let provider else { return nil }
            return Check(name: name, provider: provider, compare: compare)
        }
        var query = required(f, "query").flatMap { string($0, f.path("query")) }
        if let text = query, let queryNode = f["query"], !checkTemplates(text, queryNode, f.path("query")) {
            query = nil
        }
        let max = optional(f["max"]) { self.number($0, f.path("max")) }
        let min = optional(f["min"]) { self.number($0, f.path("min")) }
        let minCount = optional(f["minCount"]) { self.readMinCount($0, f.path("minCount")) }
        if f["max"] == nil, f["min"] == nil {
            guard f.suggested.isDisjoint(with: ["max", "min", "compare"]) else { return nil }
            report(.missingKey, at: node, path, "needs a threshold: max, min or both (or a compare)")
            return nil
        }
        if let maxValue = max ?? nil, let minValue = min ?? nil, minValue > maxValue {
            report(.conflict, at: f["min"], f.path("min"), "min \(format(minValue)) is greater than max \(format(maxValue))")
            return nil
        }
        guard let name, let provider, let query, let max, let min, let minCount else { return nil }
        return Check(name: name, provider: provider, query: query, max: max, min: min, minCount: minCount)
    }

    /// `minCount: {query, min}` of a threshold check.
    private func readMinCount(_ node: Node, _ path: String) -> MinCount? {
        guard let f = mapping(node, path, known: Self.minCountKeys) else { return nil }
        var query = required(f, "query").flatMap { string($0, f.path("query")) }
        if let text = query, let queryNode = f["query"], !checkTemplates(text, queryNode, f.path("query")) {
            query = nil
        }
        let min = required(f, "min").flatMap { self.number($0, f.path("min")) }
        if let value = min, value < 0, let minNode = f["min"] {
            report(.invalidValue, at: minNode, f.path("min"), "must be at least 0, got \(format(value))")
            return nil
        }
        guard let query, let min else { return nil }
        return MinCount(query: query, min: min)
    }

    /// `compare:` (docs/strategy.md "Comparison checks").
    private func readComparison(_ node: Node, _ path: String) -> Comparison? {
        guard let f = mapping(node, path, known: Self.compareKeys) else { return nil }
        let kind = required(f, "kind").flatMap { kindNode -> Comparison.Kind? in
            guard let text = string(kindNode, f.path("kind")) else { return nil }
            guard let kind = Comparison.Kind(rawValue: text) else {
                report(
                    .invalidValue, at: kindNode, f.path("kind"),
                    "unknown kind \(StrategyRules.quoted(text)); expected rate, latency or quality")
                return nil
            }
            return kind
        }
        guard let kind else { return nil }
        let eventsKey = kind.eventsKey
        let canary = required(f, "canary").flatMap { readSide($0, f.path("canary"), eventsKey: eventsKey, kind: kind) }
        let baseline = required(f, "baseline").flatMap {
            readSide($0, f.path("baseline"), eventsKey: eventsKey, kind: kind)
        }
        var maxIncrease: Double?
        let otherKey = kind == .quality ? "maxIncrease" : "maxDecrease"
        if let key = f.keys[otherKey] {
            let which = kind == .quality ? "a quality comparison's tolerance is maxDecrease (higher is better)"
                : "maxDecrease is for kind quality only (higher is better)"
            report(.conflict, at: key, f.path(otherKey), which)
        }
        if let toleranceNode = required(f, kind.toleranceKey) {
            let path = f.path(kind.toleranceKey)
            switch kind {
            case .rate: maxIncrease = percentage(toleranceNode, path)
            case .latency: maxIncrease = duration(toleranceNode, path).map { Double($0.milliseconds) / 1000 }
            case .quality:
                maxIncrease = percentage(toleranceNode, path).flatMap { value in
                    guard value < 1 else {
                        report(.invalidValue, at: toleranceNode, path, "must be below 100%, got \(format(value * 100))%")
                        return nil
                    }
                    return value
                }
            }
        }
        var slowerThan: Double??
        switch kind {
        case .latency:
            slowerThan = required(f, "slowerThan").flatMap { duration($0, f.path("slowerThan")) }.map {
                .some(Double($0.milliseconds) / 1000)
            }
        case .rate, .quality:
            if let key = f.keys["slowerThan"] {
                report(.conflict, at: key, f.path("slowerThan"), "slowerThan is for kind latency only")
                slowerThan = nil
            } else {
                slowerThan = .some(nil)
            }
        }
        let alpha = optional(f["alpha"]) { alphaNode -> Double? in
            guard let value = self.number(alphaNode, f.path("alpha")) else { return nil }
            guard value > 0, value < 0.5 else {
                self.report(.invalidValue, at: alphaNode, f.path("alpha"), "must be above 0 and below 0.5, got \(self.format(value))")
                return nil
            }
            return value
        }
        let minRequests = optional(f["minRequests"]) { self.integer($0, f.path("minRequests"), in: 1...Int.max) }
        guard let canary, let baseline, let maxIncrease, let slowerThan, let alpha, let minRequests else { return nil }
        return Comparison(
            kind: kind, canary: canary, baseline: baseline, maxIncrease: maxIncrease, slowerThan: slowerThan,
            alpha: alpha ?? Comparison.defaultAlpha,
            minRequests: minRequests.map(Double.init) ?? Comparison.defaultMinRequests)
    }

    /// `canary:` or `baseline:` of a comparison: `{errors|slower: QUERY, requests: QUERY}`.
    private func readSide(_ node: Node, _ path: String, eventsKey: String, kind: Comparison.Kind) -> ComparisonQueries? {
        guard let f = mapping(node, path, known: [eventsKey, "requests"]) else { return nil }
        func query(_ key: String) -> String? {
            guard let queryNode = required(f, key), let text = string(queryNode, f.path(key)) else { return nil }
            let extra = kind == .latency ? ["le"] : []
            return checkTemplates(text, queryNode, f.path(key), extraTokens: extra) ? text : nil
        }
        let events = query(eventsKey)
        let requests = query("requests")
        guard let events, let requests else { return nil }
        return ComparisonQueries(events: events, requests: requests)
    }

    /// A relative tolerance: `20%` or the fraction `0.2`, at least 0.
    private func percentage(_ node: Node, _ path: String) -> Double? {
        if let text = node.scalar?.string, text.hasSuffix("%") {
            let digits = String(text.dropLast().filter { $0 != " " })
            guard let value = Double(digits), value.isFinite, value >= 0 else {
                report(.invalidValue, at: node, path, "\(StrategyRules.quoted(text)) is not a percentage such as 20% (or the fraction 0.2)")
                return nil
            }
            return value / 100
        }
        guard let value = number(node, path) else { return nil }
        guard value >= 0 else {
            report(.invalidValue, at: node, path, "must be at least 0, got \(format(value))")
            return nil
        }
        return value
    }

    private func readProviderReference(_ f: Fields, providers: [String]?) -> String? {
        guard let providers else { return nil }
        guard let node = f["provider"] else {
            switch providers.count {
            case 1:
                return providers[0]
            case 0:
                report(.missingKey, at: f.node, f.path, "no provider to query: declare one in spec.analysis.providers")
            default:
                report(
                    .missingKey, at: f.node, f.path,
                    "missing required key \"provider\": there is more than one provider (\(providers.joined(separator: ", ")))"
                )
            }
            return nil
        }
        guard let name = string(node, f.path("provider")) else { return nil }
        guard providers.contains(name) else {
            let hint = StrategyRules.suggestion(for: name, among: providers).map { "; did you mean \"\($0)\"?" }
                ?? (providers.isEmpty ? "; spec.analysis.providers declares none" : "; declared: " + providers.joined(separator: ", "))
            report(.unknownReference, at: node, f.path("provider"), "unknown provider \(StrategyRules.quoted(name))" + hint)
            return nil
        }
        return name
    }

    /// Reports every unknown or unclosed `{{...}}` in a query at its own position; true when none.
    private func checkTemplates(_ query: String, _ node: Node, _ path: String, extraTokens: [String] = []) -> Bool {
        if query.allSatisfy(\.isWhitespace) {
            report(.invalidValue, at: node, path, "must not be empty")
            return false
        }
        let scan = QueryTemplate.scan(query)
        var ok = true
        var seen: [Substring: Int] = [:]
        for token in scan.tokens {
            let occurrence = seen[token.text, default: 0]
            seen[token.text] = occurrence + 1
            let tokens = TemplateContext.tokens + extraTokens
            guard !tokens.contains(token.name) else { continue }
            ok = false
            let at = position(of: token.text, occurrence: occurrence, in: node)
            let known = tokens.map { "{{\($0)}}" }.joined(separator: ", ")
            let hint = StrategyRules.suggestion(for: token.name, among: tokens).map { "; did you mean {{\($0)}}?" }
                ?? "; known: " + known
            report(
                .unknownReference, line: at.line, column: at.column, path,
                "unknown template \(StrategyRules.quoted(String(token.text)))" + hint
            )
        }
        if let unclosed = scan.unclosed {
            ok = false
            let opening = query[unclosed...].prefix(2)
            var occurrence = 0
            var before = query[..<unclosed]
            while let range = before.firstRange(of: "{{") {
                occurrence += 1
                before = before[range.upperBound...]
            }
            let at = position(of: opening, occurrence: occurrence, in: node)
            report(.invalidValue, line: at.line, column: at.column, path, "\"{{\" is not closed by \"}}\"")
        }
        return ok
    }

    private func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }

    // MARK: notifications

    private func readNotifications(_ node: Node) -> [NotificationTarget]? {
        let path = "spec.notifications"
        guard let items = sequence(node, path) else { return nil }
        var targets: [NotificationTarget] = []
        var ok = true
        for (index, item) in items.enumerated() where !isSaturated {
            let itemPath = "\(path)[\(index)]"
            guard let f = mapping(item, itemPath, known: ["webhook", "on"]) else {
                ok = false
                continue
            }
            let webhook = required(f, "webhook").flatMap { string($0, f.path("webhook"), rule: StrategyRules.httpURL) }
            var events: [String]? = []
            if let onNode = f["on"], let list = sequence(onNode, f.path("on")) {
                let known = NotificationTarget.eventTypes.map(\.rawValue)
                for (eventIndex, eventNode) in list.enumerated() where !isSaturated {
                    let eventPath = "\(f.path("on"))[\(eventIndex)]"
                    guard let event = string(eventNode, eventPath) else {
                        events = nil
                        continue
                    }
                    guard known.contains(event) else {
                        let hint = StrategyRules.suggestion(for: event, among: known).map { "; did you mean \"\($0)\"?" }
                            ?? "; see docs/strategy.md for the event types"
                        report(.unknownReference, at: eventNode, eventPath, "unknown event type \(StrategyRules.quoted(event))" + hint)
                        events = nil
                        continue
                    }
                    events?.append(event)
                }
            } else if f["on"] != nil {
                events = nil
            }
            guard let webhook, let events else {
                ok = false
                continue
            }
            targets.append(NotificationTarget(webhook: webhook, on: events))
        }
        return ok ? targets : nil
    }
}
