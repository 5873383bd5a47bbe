/// What a token may do. Roles nest: `admin` ⊃ `release` ⊃ {`ci`, `oncall`} ⊃ `viewer`.
public enum Role: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    case viewer
    case ci
    case oncall
    case release
    case admin

    public var description: String { rawValue }

    /// Whether a token with this role may use a route that needs `needed`.
    public func includes(_ needed: Role) -> Bool {
        switch (self, needed) {
        case (.admin, _): true
        case (.release, .release), (.release, .ci), (.release, .oncall), (.release, .viewer): true
        case (.ci, .ci), (.ci, .viewer): true
        case (.oncall, .oncall), (.oncall, .viewer): true
        case (.viewer, .viewer): true
        default: false
        }
    }
}
