/// A line diff for `sluice apply`: `-` removed, `+` added, with up to `context` unchanged lines around
/// each change. The standard library's `difference(from:)` (Myers) finds the changes in time that grows with the
/// size of the change, not old × new lines: a large strategy applied with a small change costs the server little.
/// Where a line changed, the old one comes first, as in `diff -u`.
public enum TextDiff {
    public static func unified(old: String, new: String, context: Int = 2) -> String {
        let a = old.split(separator: "\n", omittingEmptySubsequences: false)
        let b = new.split(separator: "\n", omittingEmptySubsequences: false)
        var removed = Set<Int>(), inserted = Set<Int>()
        for change in b.difference(from: a) {
            switch change {
            case .remove(let offset, _, _): removed.insert(offset)
            case .insert(let offset, _, _): inserted.insert(offset)
            }
        }
        guard !removed.isEmpty || !inserted.isEmpty else { return "" }
        // Both sides in order: an unchanged line advances both, a removed one the old side, an inserted one the new.
        var lines: [(Character, Substring)] = []
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if removed.contains(i) {
                lines.append(("-", a[i])); i += 1
            } else if inserted.contains(j) {
                lines.append(("+", b[j])); j += 1
            } else {
                lines.append((" ", a[i])); i += 1; j += 1
            }
        }
        var keep = Set<Int>()
        for index in lines.indices where lines[index].0 != " " {
            keep.formUnion(max(0, index - context)...min(lines.count - 1, index + context))
        }
        var out = ""
        var last = -1
        for index in keep.sorted() {
            if last >= 0 && index > last + 1 { out += "  ...\n" }
            out += "\(lines[index].0) \(lines[index].1)\n"
            last = index
        }
        return out
    }
}
