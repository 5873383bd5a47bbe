extension Rollout {
    /// The most characters a version may have (an OCI image tag's limit).
    public static let maxVersionLength = 128

    /// Why `version` cannot be rolled out (the value, quoted, and the rule), or nil. A version is made of an
    /// OCI image tag's characters, `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`: it becomes the canary's image tag,
    /// fills `{{version}}` in queries and is printed on terminals, where quotes, spaces, line breaks and
    /// escapes have no place.
    public static func versionProblem(_ version: String) -> String? {
        let bytes = Array(version.utf8)
        let ok = !bytes.isEmpty && bytes.count <= maxVersionLength
            && isVersionStart(bytes[0]) && bytes.allSatisfy { isVersionStart($0) || $0 == 0x2E || $0 == 0x2D }
        guard !ok else { return nil }
        return "\(StrategyRules.quoted(version)) is not a valid version: use letters, digits, \"_\", \".\" "
            + "and \"-\", starting with a letter, digit or \"_\", at most \(maxVersionLength) characters (an image tag)"
    }

    private static func isVersionStart(_ byte: UInt8) -> Bool {
        (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) || byte == 0x5F
    }
}
