import ArgumentParser
import SluiceCore

/// A duration on the command line: `90s`, `5m`, `1h30m`, `500ms`, or plain seconds.
struct DurationArgument: ExpressibleByArgument, Sendable {
    var duration: Duration
    init(_ duration: Duration) { self.duration = duration }

    init?(argument: String) {
        if let seconds = Int(argument), seconds >= 0 {
            duration = .seconds(seconds)
            return
        }
        var total: Duration = .zero
        var number = ""
        var rest = Substring(argument)
        while let first = rest.first {
            if first.isNumber {
                number.append(first)
                rest = rest.dropFirst()
                continue
            }
            guard let value = Int(number) else { return nil }
            number = ""
            if rest.hasPrefix("ms") {
                total += .milliseconds(value)
                rest = rest.dropFirst(2)
            } else {
                switch first {
                case "s": total += .seconds(value)
                case "m": total += .seconds(value * 60)
                case "h": total += .seconds(value * 3600)
                default: return nil
                }
                rest = rest.dropFirst()
            }
        }
        guard number.isEmpty, !argument.isEmpty else { return nil }
        duration = total
    }

    static var defaultCompletionKind: CompletionKind { .default }

    /// `30s` in `--help`, as the option is written (not the Swift type's description).
    var defaultValueDescription: String { duration.goString }
}

/// `1h02m03s`, `4m05s`, `7s`.
func formatSeconds(_ seconds: Double) -> String {
    let total = Int(seconds.rounded(.up))
    let h = total / 3600, m = total / 60 % 60, s = total % 60
    func pad(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    if h > 0 { return "\(h)h\(pad(m))m\(pad(s))s" }
    if m > 0 { return "\(m)m\(pad(s))s" }
    return "\(s)s"
}
