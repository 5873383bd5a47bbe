/// The canonical form of a strategy: its document as JSON, every default written out, keys sorted,
/// durations Go-style. Two strategies are equal exactly when their canonical forms are, so `sluice
/// apply` can diff it and the store can keep it; `StrategyLoader` reads it back to the same value.
extension Strategy {
    /// The canonical document, pretty-printed with two-space indentation (one field a line, so line
    /// diffs are meaningful), or on one line when `pretty` is false.
    public func canonicalJSON(pretty: Bool = true) -> String {
        var out = ""
        CanonicalJSON.write(canonicalDocument, into: &out, indent: pretty ? 0 : nil)
        return out
    }

    /// The strategy as the `JSONValue` of its document.
    public var canonicalDocument: JSONValue {
        var spec: [String: JSONValue] = [
            "target": target.document,
            "traffic": traffic.document,
            "stages": .array(stages.map(\.document)),
            "analysis": analysis.document,
            "rollback": .object(["automatic": .bool(rollback.automatic)]),
            "notifications": .array(notifications.map {
                .object(["webhook": .string($0.webhook), "on": .array($0.on.map(JSONValue.string))])
            }),
        ]
        // Written only when set, so that the canonical form of a strategy without a bake is what it was before.
        if let bake { spec["bake"] = .object(["duration": .string(bake.duration.goString)]) }
        return .object([
            "apiVersion": .string(StrategyLoader.apiVersion),
            "kind": .string(StrategyLoader.kind),
            "metadata": .object([
                "name": .string(name), "namespace": .string(namespace),
                "labels": .object(labels.mapValues(JSONValue.string)),
            ]),
            "spec": .object(spec),
        ])
    }
}

extension Target {
    fileprivate var document: JSONValue {
        switch self {
        case .deployment(let name, let container):
            var fields: [String: JSONValue] = ["deployment": .string(name)]
            if let container { fields["container"] = .string(container) }
            return .object(fields)
        case .upstreams(let stable, let canary, let health):
            var pools: [String: JSONValue] = [
                "stable": .array(stable.map(JSONValue.string)), "canary": .array(canary.map(JSONValue.string)),
            ]
            if let health { pools["health"] = health.document }
            return .object(["upstreams": .object(pools)])
        }
    }
}

extension HealthCheck {
    fileprivate var document: JSONValue {
        var fields: [String: JSONValue] = [
            "scheme": .string(scheme), "path": .string(path), "expect": .number(Double(expect)),
            "timeout": .string(timeout.goString), "failureThreshold": .number(Double(failureThreshold)),
        ]
        switch version {
        case .header(let name)?: fields["version"] = .object(["header": .string(name)])
        case .jsonPath(let path)?: fields["version"] = .object(["jsonPath": .string(path)])
        case nil: break
        }
        return .object(fields)
    }
}

extension TrafficRoute {
    fileprivate var document: JSONValue {
        let settings: [String: JSONValue]
        switch self {
        case .gatewayAPI(let route, let stable, let canary):
            settings = ["httpRoute": .string(route), "stableService": .string(stable), "canaryService": .string(canary)]
        case .nginxIngress(let ingress, let canary):
            settings = ["ingress": .string(ingress), "canaryService": .string(canary)]
        case .caddy(let adminURL, let handlerID):
            settings = ["adminURL": .string(adminURL), "handlerID": .string(handlerID)]
        case .awsALB(let alb):
            var fields: [String: JSONValue] = [
                "region": .string(alb.region), "listenerARN": .string(alb.listenerARN),
                "stableTargetGroupARN": .string(alb.stableTargetGroupARN),
                "canaryTargetGroupARN": .string(alb.canaryTargetGroupARN),
            ]
            if let endpoint = alb.endpoint { fields["endpoint"] = .string(endpoint) }
            settings = fields
        }
        return .object([kind.rawValue: .object(settings)])
    }
}

extension Stage {
    fileprivate var document: JSONValue {
        var fields: [String: JSONValue] = [
            "name": .string(name), "weight": .number(Double(weight)), "pause": .bool(pause),
            "checks": .array(checks.map(\.document)),
        ]
        if let hold { fields["hold"] = .string(hold.goString) }
        return .object(fields)
    }
}

extension Analysis {
    fileprivate var document: JSONValue {
        .object([
            "interval": .string(interval.goString),
            "failureLimit": .number(Double(failureLimit)),
            "noDataLimit": .number(Double(noDataLimit)),
            "onNoData": .string(onNoData.rawValue),
            "providers": .object(providers.mapValues(\.document)),
            "checks": .array(checks.map(\.document)),
        ])
    }
}

extension ProviderConfig {
    fileprivate var document: JSONValue {
        switch self {
        case .prometheus(let config):
            var fields: [String: JSONValue] = [
                "address": .string(config.address), "timeout": .string(config.timeout.goString),
                "headers": .object(config.headers.mapValues(\.document)),
            ]
            if let file = config.bearerTokenFile { fields["bearerTokenFile"] = .string(file) }
            return .object(["prometheus": .object(fields)])
        case .web(let config):
            return .object([
                "web": .object([
                    "url": .string(config.url), "jsonPath": .string(config.jsonPath),
                    "headers": .object(config.headers.mapValues(\.document)),
                    "timeout": .string(config.timeout.goString),
                ])
            ])
        }
    }
}

extension Check {
    fileprivate var document: JSONValue {
        if let compare {
            return .object(["name": .string(name), "provider": .string(provider), "compare": compare.document])
        }
        var fields: [String: JSONValue] = ["name": .string(name), "provider": .string(provider), "query": .string(query)]
        if let max { fields["max"] = .number(max) }
        if let min { fields["min"] = .number(min) }
        if let minCount { fields["minCount"] = .object(["query": .string(minCount.query), "min": .number(minCount.min)]) }
        return .object(fields)
    }
}

extension Comparison {
    fileprivate var document: JSONValue {
        let eventsKey = kind.eventsKey
        func side(_ queries: ComparisonQueries) -> JSONValue {
            .object([eventsKey: .string(queries.events), "requests": .string(queries.requests)])
        }
        var fields: [String: JSONValue] = [
            "kind": .string(kind.rawValue), "canary": side(canary), "baseline": side(baseline),
            "alpha": .number(alpha), "minRequests": .number(minRequests),
        ]
        switch kind {
        case .rate: fields["maxIncrease"] = .number(maxIncrease)
        case .latency: fields["maxIncrease"] = .string(Duration.milliseconds(Int64((maxIncrease * 1000).rounded())).goString)
        case .quality: fields["maxDecrease"] = .number(maxIncrease)
        }
        if let slowerThan {
            fields["slowerThan"] = .string(Duration.milliseconds(Int64((slowerThan * 1000).rounded())).goString)
        }
        return .object(fields)
    }
}

/// A small deterministic JSON writer: sorted keys, integers without a fraction, and every character
/// that YAML would not read back verbatim escaped.
enum CanonicalJSON {
    /// Writes `value`; `indent` is the current depth when pretty-printing, nil for one line.
    static func write(_ value: JSONValue, into out: inout String, indent: Int?) {
        switch value {
        case .null: out += "null"
        case .bool(let flag): out += flag ? "true" : "false"
        case .number(let number): out += format(number)
        case .string(let text): writeString(text, into: &out)
        case .array(let items):
            writeContainer("[", "]", items.count, into: &out, indent: indent) { index, out, inner in
                write(items[index], into: &out, indent: inner)
            }
        case .object(let fields):
            let keys = fields.keys.sorted()
            writeContainer("{", "}", keys.count, into: &out, indent: indent) { index, out, inner in
                writeString(keys[index], into: &out)
                out += inner == nil ? ":" : ": "
                write(fields[keys[index]]!, into: &out, indent: inner)
            }
        }
    }

    private static func writeContainer(
        _ open: String, _ close: String, _ count: Int, into out: inout String, indent: Int?,
        element: (Int, inout String, Int?) -> Void
    ) {
        out += open
        guard count > 0 else { return out += close }
        let inner = indent.map { $0 + 1 }
        for index in 0..<count {
            if index > 0 { out += "," }
            if let inner { out += "\n" + String(repeating: "  ", count: inner) }
            element(index, &out, inner)
        }
        if let indent { out += "\n" + String(repeating: "  ", count: indent) }
        out += close
    }

    /// Integral values below 2^53 as integers; others in Swift's shortest round-trip form.
    static func format(_ number: Double) -> String {
        guard number.isFinite else { return "null" }
        if number == number.rounded(), abs(number) < 9_007_199_254_740_992 { return String(Int64(number)) }
        return "\(number)"
    }

    private static func writeString(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                // Controls, C1 controls, NEL, line/paragraph separators, BOM and non-characters: YAML
                // would reject them or read them as line breaks, so they are escaped.
                let v = scalar.value
                if v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029 || v == 0xFEFF
                    || v == 0xFFFE || v == 0xFFFF
                {
                    let hex = String(v, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}
