/// The value rules of the strategy format that are not about YAML structure: names, addresses, ARNs,
/// and the "did you mean" suggestion for near misses. Each check returns nil when the value is
/// fine, or the message to report.
enum StrategyRules {
    /// DNS-1123 label: lowercase letters, digits and `-`, starting and ending alphanumeric.
    static func dnsLabel(_ value: String, maxLength: Int = 63) -> String? {
        let ok = !value.isEmpty && value.utf8.count <= maxLength && value.utf8.allSatisfy(isLabelByte)
            && value.utf8.first.map(isAlphanumeric) == true && value.utf8.last.map(isAlphanumeric) == true
        return ok ? nil : "\(quoted(value)) is not a valid name: use lowercase letters, digits and \"-\", "
            + "starting and ending with a letter or digit, at most \(maxLength) characters"
    }

    /// DNS-1123 subdomain: dot-separated labels, at most `maxLength` in all.
    static func dnsSubdomain(_ value: String, maxLength: Int = 253) -> String? {
        let labels = value.split(separator: ".", omittingEmptySubsequences: false)
        let ok = !value.isEmpty && value.utf8.count <= maxLength && labels.allSatisfy { dnsLabel(String($0)) == nil }
        return ok ? nil : "\(quoted(value)) is not a valid name: use lowercase letters, digits, \"-\" and \".\", "
            + "each part starting and ending with a letter or digit, at most \(maxLength) characters"
    }

    private static func isAlphanumeric(_ b: UInt8) -> Bool { (b >= 97 && b <= 122) || (b >= 48 && b <= 57) }
    private static func isLabelByte(_ b: UInt8) -> Bool { isAlphanumeric(b) || b == 45 }

    /// An `http://` or `https://` URL with a host and no whitespace. The error quotes its origin only (the line and
    /// column point at the value): a webhook's path or a query may be a secret, and errors reach server logs.
    static func httpURL(_ value: String) -> String? {
        let lower = value.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") {
            rest = value.dropFirst(7)
        } else if lower.hasPrefix("https://") {
            rest = value.dropFirst(8)
        } else {
            return "\(quoted(Redaction.url(value, keeping: .origin))) is not an http:// or https:// URL"
        }
        let host = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if host.isEmpty || value.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 32 }) {
            return "\(quoted(Redaction.url(value, keeping: .origin))) is not a valid URL: it needs a host and no spaces"
        }
        return nil
    }

    /// A health check path: starts with `/`, no whitespace or control characters (it goes into a request line).
    static func httpPath(_ value: String) -> String? {
        guard value.hasPrefix("/") else { return "\(quoted(value)) is not a path: start it with \"/\", e.g. /healthz" }
        if value.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 32 || $0.value == 127 }) {
            return "\(quoted(value)) is not a valid path: no spaces or control characters"
        }
        return nil
    }

    /// An HTTP header name (RFC 9110 token), e.g. `X-Version`.
    static func headerName(_ value: String) -> String? {
        let ok = !value.isEmpty && value.utf8.allSatisfy { b in
            (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || Array("!#$%&'*+-.^_`|~".utf8).contains(b)
        }
        return ok ? nil : "\(quoted(value)) is not a header name: use letters, digits and \"-\", e.g. X-Version"
    }

    /// A dotted path into a JSON document (`build.version`, `items.0.version`): no empty component.
    static func dottedPath(_ value: String) -> String? {
        value.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty)
            ? "\(quoted(value)) is not a dotted path such as version or build.version" : nil
    }

    /// `host:port` or `[ipv6]:port`, port 1...65535.
    static func hostPort(_ value: String) -> String? {
        let problem = "\(quoted(value)) is not host:port (e.g. 10.0.0.7:8080 or app-1.internal:8080)"
        guard let colon = value.lastIndex(of: ":") else { return problem }
        let host = value[..<colon]
        let port = value[value.index(after: colon)...]
        guard let number = Int(port), number >= 1, number <= 65535, port.allSatisfy(\.isASCII) else {
            return "\(quoted(value)) has no valid port: use host:port with a port from 1 to 65535"
        }
        if host.hasPrefix("[") && host.hasSuffix("]") && host.count > 2 {
            let inner = host.dropFirst().dropLast()
            return inner.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." } ? nil : problem
        }
        let hostOK = !host.isEmpty && host.utf8.allSatisfy { b in
            (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || b == 45 || b == 46 || b == 95
        }
        return hostOK ? nil : problem
    }

    /// An AWS region name such as `us-east-1` or `us-gov-west-1`.
    static func awsRegion(_ value: String) -> String? {
        let parts = value.split(separator: "-", omittingEmptySubsequences: false)
        let ok = parts.count >= 3 && parts.dropLast().allSatisfy { !$0.isEmpty && $0.allSatisfy { $0 >= "a" && $0 <= "z" } }
            && parts.last.map { !$0.isEmpty && $0.allSatisfy(\.isNumber) && $0.allSatisfy(\.isASCII) } == true
        return ok ? nil : "\(quoted(value)) is not an AWS region (e.g. us-east-1)"
    }

    /// An Elastic Load Balancing ARN of the given resource type (`listener`, `targetgroup`) in `region`.
    /// `arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:TYPE/...`
    static func elbARN(_ value: String, resource: String, region: String?) -> String? {
        let parts = value.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "arn", !parts[1].isEmpty, parts[2] == "elasticloadbalancing",
              !parts[3].isEmpty, !parts[4].isEmpty, parts[5].hasPrefix(resource + "/"),
              parts[5].count > resource.count + 1
        else {
            return "\(quoted(value)) is not an ELB \(resource) ARN "
                + "(arn:aws:elasticloadbalancing:REGION:ACCOUNT:\(resource)/...)"
        }
        if let region, parts[3] != region {
            return "the ARN is in region \(quoted(String(parts[3]))), but region is \(quoted(region))"
        }
        return nil
    }

    /// A string in double quotes, escaped as in JSON; a long one is cut so it cannot drown the message.
    static func quoted(_ value: String) -> String {
        var out = ""
        CanonicalJSON.write(.string(value), into: &out, indent: nil)
        return out.count > 80 ? String(out.prefix(76)) + "...\"" : out
    }

    /// The candidate closest to `word` when it is a near miss (edit distance 1, or 2 for words of 4
    /// or more characters; case differences cost nothing extra beyond one edit each).
    static func suggestion(for word: String, among candidates: [String]) -> String? {
        let limit = word.count >= 4 ? 2 : 1
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = candidate.lowercased() == word.lowercased() ? 0 : editDistance(word, candidate)
            if distance <= limit, distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
        }
        return best?.candidate
    }

    /// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        // Names are short; a word much longer than every key cannot be a near miss.
        if abs(x.count - y.count) > 2 { return abs(x.count - y.count) }
        var d = Array(repeating: Array(repeating: 0, count: y.count + 1), count: x.count + 1)
        for i in 0...x.count { d[i][0] = i }
        for j in 0...y.count { d[0][j] = j }
        for i in 1...x.count {
            for j in 1...y.count {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[x.count][y.count]
    }

    /// `"a", "b" or "c"`.
    static func alternatives(_ values: [String]) -> String {
        let quotedValues = values.map { "\"\($0)\"" }
        guard quotedValues.count > 1 else { return quotedValues.first ?? "" }
        return quotedValues.dropLast().joined(separator: ", ") + " or " + quotedValues.last!
    }
}

/// The known word closest to `word` when it is a near miss (one or two letters off), for the "did you mean"
/// of strategy files, the server config and the tokens file alike.
public func nearMiss(_ word: String, among candidates: [String]) -> String? {
    StrategyRules.suggestion(for: word, among: candidates)
}
