import Foundation

extension PrometheusProvider {
    /// The body of an instant query answer (`/api/v1/query`), read by `JSONScanner` in one pass: only what a
    /// reading needs is kept; other members (`warnings`, `infos`, a matrix's `values`) are checked and skipped.
    struct Answer: Sendable, Hashable {
        var status: String
        var data: Payload?
        var errorType: String?
        var error: String?
    }

    /// `data`: the result's type and the result.
    struct Payload: Sendable, Hashable {
        var resultType: String
        var result: ResultList
    }

    /// `data.result`, read before its meaning is known (JSON does not order an object's members, so `resultType`
    /// may come after it): a list of elements, which is a vector's series or a scalar's `[time, "value"]`.
    struct ResultList: Sendable, Hashable {
        /// False when `result` is not a list at all (null, an object, a string...).
        var isList = true
        /// Elements in the list.
        var count = 0
        /// The first `keptSeries` elements: a series for an object, nil for anything else.
        var first: [Series?] = []
        /// Element [1] when it is a string: a scalar's value.
        var secondText: String?

        /// Elements kept in `first`: the one a vector needs, and a few to name when there are too many.
        static let keptSeries = 3
    }

    /// One element of a vector: its labels and its sample.
    struct Series: Sendable, Hashable {
        /// `metric`, in the answer's order; a label whose value is not a string has none here.
        var labels: [Label] = []
        /// Whether the element has a `value` member.
        var hasValue = false
        /// The value's text when `value` is `[time, "text"]`.
        var valueText: String?
    }

    /// A label of a series; `value` is nil when the answer's value is not a string.
    struct Label: Sendable, Hashable {
        var name: String
        var value: String?
    }
}

extension PrometheusProvider.Answer {
    /// Reads `body`; a body that is not JSON, or JSON that is not shaped like an answer, throws what was wrong
    /// and where.
    init(json body: Data) throws(JSONScanError) {
        let read: Result<Self, JSONScanError> = body.withUnsafeBytes { bytes in
            var scanner = JSONScanner(bytes)
            do throws(JSONScanError) {
                let answer = try Self(scanning: &scanner)
                try scanner.finish()
                return .success(answer)
            } catch {
                return .failure(error)
            }
        }
        self = try read.get()
    }

    private init(scanning scanner: inout JSONScanner) throws(JSONScanError) {
        var status: String?
        var data: PrometheusProvider.Payload?
        var errorType: String?
        var error: String?
        var members = try scanner.enterObject("the answer")
        while let key = try scanner.nextKey(in: &members) {
            switch key {
            case "status": status = try scanner.readString("status")
            case "data": data = try scanner.readNull() ? nil : try PrometheusProvider.Payload(scanning: &scanner)
            case "errorType": errorType = try scanner.readOptionalString("errorType")
            case "error": error = try scanner.readOptionalString("error")
            default: try scanner.skipValue()
            }
        }
        guard let status else { throw scanner.error("the answer has no \"status\"") }
        self.init(status: status, data: data, errorType: errorType, error: error)
    }
}

extension PrometheusProvider.Payload {
    fileprivate init(scanning scanner: inout JSONScanner) throws(JSONScanError) {
        var resultType: String?
        var result: PrometheusProvider.ResultList?
        var members = try scanner.enterObject("data")
        while let key = try scanner.nextKey(in: &members) {
            switch key {
            case "resultType": resultType = try scanner.readString("data.resultType")
            case "result": result = try PrometheusProvider.ResultList(scanning: &scanner)
            default: try scanner.skipValue()
            }
        }
        guard let resultType else { throw scanner.error("data has no \"resultType\"") }
        guard let result else { throw scanner.error("data has no \"result\"") }
        self.init(resultType: resultType, result: result)
    }
}

extension PrometheusProvider.ResultList {
    fileprivate init(scanning scanner: inout JSONScanner) throws(JSONScanError) {
        self.init()
        guard try scanner.peek() == .array else {
            isList = false
            try scanner.skipValue()
            return
        }
        var elements = try scanner.enterArray()
        while try scanner.nextElement(in: &elements) {
            let index = elements.count - 1
            count = elements.count
            let kind = try scanner.peek()
            if index < Self.keptSeries {
                first.append(kind == .object ? try PrometheusProvider.Series(scanning: &scanner) : nil)
                if kind == .object { continue }
            }
            if index == 1, kind == .string {
                secondText = try scanner.readString("data.result[1]")
            } else {
                try scanner.skipValue()
            }
        }
    }
}

extension PrometheusProvider.Series {
    fileprivate init(scanning scanner: inout JSONScanner) throws(JSONScanError) {
        self.init()
        var members = try scanner.enterObject()
        while let key = try scanner.nextKey(in: &members) {
            switch key {
            case "metric":
                labels = []
                // Only shown in errors, so a metric that is not an object (never seen) has no labels to show.
                guard try scanner.peek() == .object else {
                    try scanner.skipValue()
                    continue
                }
                var metric = try scanner.enterObject()
                while let name = try scanner.nextKey(in: &metric) {
                    if try scanner.peek() == .string {
                        labels.append(PrometheusProvider.Label(name: name, value: try scanner.readString(name)))
                    } else {
                        try scanner.skipValue()
                        labels.append(PrometheusProvider.Label(name: name, value: nil))
                    }
                }
            case "value":
                hasValue = true
                valueText = try Self.sampleText(&scanner)
            default:
                try scanner.skipValue()
            }
        }
    }

    /// The text of a `[time, "text"]` sample; nil for anything else (which is still checked to be JSON).
    private static func sampleText(_ scanner: inout JSONScanner) throws(JSONScanError) -> String? {
        guard try scanner.peek() == .array else {
            try scanner.skipValue()
            return nil
        }
        var text: String?
        var elements = try scanner.enterArray()
        while try scanner.nextElement(in: &elements) {
            if elements.count == 2, try scanner.peek() == .string {
                text = try scanner.readString("the sample's value")
            } else {
                try scanner.skipValue()
            }
        }
        return elements.count == 2 ? text : nil
    }
}
