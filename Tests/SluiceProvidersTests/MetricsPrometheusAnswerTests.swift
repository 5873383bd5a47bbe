import Foundation
import SluiceCore
import SluiceHTTP
import SluiceTestSupport
import Testing

@testable import SluiceProviders

/// How the Prometheus provider's decoder (`PrometheusProvider.Answer` over `JSONScanner`) reads answers: every
/// malformed or unexpected body is an error that says what was wrong and where; well-formed answers read the same
/// whatever their member order, spacing, escapes or extra members.
@Suite struct MetricsPrometheusAnswerTests {
    static let endpoint = MetricEndpoint(
        kind: "prometheus", name: "prom", url: "http://127.0.0.1:9090", client: ScriptedHTTPClient(body: ""),
        timeout: .seconds(1))

    func reading(_ body: String, status: Int = 200) throws -> MetricReading {
        try reading(Data(body.utf8), status: status)
    }

    func reading(_ body: Data, status: Int = 200) throws -> MetricReading {
        try PrometheusProvider.reading(from: HTTPResponse(status: status, body: body), endpoint: Self.endpoint)
    }

    /// Bodies that are not JSON, with what the error must say (including the line and column).
    static let malformed: [(body: String, message: String)] = [
        ("", "unexpected end of input, expected a value at line 1, column 1"),
        ("   \n", "unexpected end of input, expected a value at line 2, column 1"),
        (#"{"status":"success","#, "unexpected end of input, expected a string key at line 1, column 21"),
        (#"{"status":"success",}"#, "unexpected '}', expected a string key at line 1, column 21"),
        (
            #"{"status":"success" "data":1}"#,
            "unexpected '\"', expected ',' or '}' after an object member at line 1, column 21"
        ),
        (#"{"status" "success"}"#, #"unexpected '"', expected ':' after the key "status" at line 1, column 11"#),
        (#"{"status":success}"#, "unexpected 's', expected a value at line 1, column 11"),
        (#"{status:"success"}"#, "unexpected 's', expected a string key at line 1, column 2"),
        (#"{"status":"success"} x"#, "unexpected 'x' after the end of the document at line 1, column 22"),
        (#"{"status":"succ"#, "a string that does not end at line 1, column 11"),
        (#"{"status":"a\qb"}"#, #"an unknown escape \q in a string at line 1, column 13"#),
        (#"{"status":"\u12G4"}"#, #"unexpected 'G' in a \u escape, expected a hex digit at line 1, column 16"#),
        (#"{"status":"\uD800x"}"#, #"a \u escape of a high surrogate without its low surrogate at line 1, column 12"#),
        (#"{"status":"\uDC00"}"#, #"a \u escape of a low surrogate without its high surrogate at line 1, column 12"#),
        ("{\"status\":\"a\tb\"}", "a control character (byte 0x9) in a string at line 1, column 13"),
        (#"{"status":"success","x":01}"#, "a number with a leading zero at line 1, column 26"),
        (#"{"status":"ok","x":1.}"#, "unexpected '}' in a number, expected a digit after '.' at line 1, column 22"),
        (
            #"{"status":"success","x":1e}"#,
            "unexpected '}' in a number, expected a digit in the exponent at line 1, column 27"
        ),
        (#"{"status":"success","x":-}"#, "unexpected '}' in a number, expected a digit at line 1, column 26"),
        (#"{"status":"success","x":12ab}"#, "unexpected 'a' in a number at line 1, column 27"),
        (#"{"status":"success","x":nul}"#, "unexpected 'n', expected null at line 1, column 25"),
        (#"{"status":"success","x":truex}"#, "unexpected 'x' after true at line 1, column 29"),
        (#"{"status":"success","x":[1,]}"#, "unexpected ']', expected a value at line 1, column 28"),
        (
            #"{"status":"success","x":[1 2]}"#,
            "unexpected '2', expected ',' or ']' after an array element at line 1, column 28"
        ),
        (
            "{\"status\":\"success\",\n  \"data\": {\"resultType\": \"vector\",\n  \"result\": [}}",
            "unexpected '}', expected a value at line 3, column 14"
        ),
        (
            #"{"status":"success","x":"# + String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
                + "}",
            "nested deeper than 128 levels at line 1, column 152"
        ),
    ]

    @Test(arguments: malformed)
    func malformedJSONIsABadResponseSayingWhatAndWhere(body: String, message: String) throws {
        let error = try #require(throws: ProviderError.self) { try reading(body) }
        #expect(error.code == .badResponse)
        #expect(error.message.hasPrefix("not a Prometheus query answer (\(message)): "), "\(error.message)")
    }

    @Test func invalidUTF8InAStringIsABadResponse() throws {
        var body = Data(#"{"status":"suc"#.utf8)
        body.append(contentsOf: [0xC3, 0x28])
        body.append(contentsOf: Data(#"cess"}"#.utf8))
        let error = try #require(throws: ProviderError.self) { try reading(body) }
        #expect(error.message.hasPrefix("not a Prometheus query answer (a string that is not valid UTF-8 at line 1"))
    }

    /// A successful answer with `data`.
    static func success(_ data: String) -> String { #"{"status":"success","data":"# + data + "}" }
    /// A successful answer of `resultType` with `result`.
    static func success(_ resultType: String, _ result: String) -> String {
        success(#"{"resultType":""# + resultType + #"","result":"# + result + "}")
    }

    static let notASample = #"a sample that is not [time, "number"]"#

    /// JSON of another shape than an answer, with what the error must say.
    static let misshapen: [(body: String, message: String)] = [
        ("[1,2]", "not a Prometheus query answer (the answer must be an object, not an array at line 1, column 1)"),
        (#""ok""#, "not a Prometheus query answer (the answer must be an object, not a string at line 1, column 1)"),
        (#"{"data":null}"#, #"not a Prometheus query answer (the answer has no "status" at line 1, column 14)"#),
        (#"{"status":1}"#, "(status must be a string, not a number at line 1, column 11)"),
        (success("[]"), "(data must be an object, not an array at line 1, column 28)"),
        (success(#"{"result":[]}"#), #"(data has no "resultType" at line 1, column 41)"#),
        (success(#"{"resultType":"vector"}"#), #"(data has no "result" at line 1, column 51)"#),
        (success(#"{"resultType":7,"result":[]}"#), "(data.resultType must be a string, not a number"),
        (#"{"status":"error","error":["x"]}"#, "(error must be a string, not an array at line 1, column 27)"),
        (
            #"{"status":"ok","data":{"resultType":"scalar","result":[1,"1"]}}"#,
            #"not a Prometheus query answer (status "ok"): {"status":"ok""#
        ),
        (#"{"status":"success"}"#, #"not a Prometheus query answer (no data): {"status":"success"}"#),
        (success("null"), "not a Prometheus query answer (no data)"),
        (success("vector", #"{"a":1}"#), "a vector result that is not a list at data.result"),
        (success("vector", "null"), "a vector result that is not a list at data.result"),
        (success("vector", #"[{"metric":{}}]"#), "a vector element without a value at data.result[0]"),
        (success("vector", #"[[1,"1"]]"#), "a vector element without a value at data.result[0]"),
        (success("vector", #"[{"value":[1]}]"#), notASample + " at data.result[0].value"),
        (success("vector", #"[{"value":[1,2]}]"#), notASample + " at data.result[0].value"),
        (success("vector", #"[{"value":[1,"2",3]}]"#), notASample + " at data.result[0].value"),
        (success("vector", #"[{"value":"1"}]"#), notASample + " at data.result[0].value"),
        (success("vector", #"[{"value":[1,"hi"]}]"#), notASample + #" at data.result[0].value: "hi" is not a number"#),
        (success("scalar", "[1]"), notASample + " at data.result"),
        (success("scalar", #""1""#), notASample + " at data.result"),
        (success("scalar", #"[1,"x"]"#), notASample + #" at data.result: "x" is not a number"#),
        (success("string", #"[1,"x"]"#), "the query must return a number but returned a string"),
        (success("matrix", #"[{"metric":{},"values":[[1,"1"]]}]"#), "returned a range vector"),
    ]

    @Test(arguments: misshapen)
    func misshapenAnswerIsABadResponseSayingWhatAndWhere(body: String, message: String) throws {
        let error = try #require(throws: ProviderError.self) { try reading(body) }
        #expect(error.code == .badResponse)
        #expect(error.message.contains(message), "\(error.message)")
    }

    /// Answers that read the same however they are written.
    static let equivalent: [(body: String, expected: MetricReading)] = [
        // `result` before `resultType`, `data` before `status`.
        (
            #"{"data":{"result":[{"value":[1,"0.25"],"metric":{}}],"resultType":"vector"},"status":"success"}"#,
            .value(0.25)
        ),
        // Whitespace everywhere JSON allows it.
        (
            " {\r\n\t\"status\" : \"success\" ,\n \"data\" : { \"resultType\" : \"scalar\" , "
                + "\"result\" : [ 1.5e9 , \"3\" ] } } \n",
            .value(3)),
        // Members Prometheus adds (warnings, infos, stats) and a native histogram beside the value.
        (#"{"status":"success","warnings":["w"],"infos":[],"stats":{"a":{"b":[true,false,null,-0.5E+3]}},"#
            + #""data":{"resultType":"vector","result":[{"metric":{"le":"+Inf"},"histogram":[1,{"count":"2"}],"#
            + #""value":[1,"7"]}]}}"#, .value(7)),
        // Escaped text in the value.
        (#"{"status":"success","data":{"resultType":"scalar","result":[1,"\u0031\u002e\u0035"]}}"#, .value(1.5)),
        (#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#, MetricReading(number: .nan)),
        // A null `errorType`/`error` on success.
        (#"{"status":"success","errorType":null,"error":null,"data":{"resultType":"scalar","result":["1","0"]}}"#,
            .value(0)),
    ]

    @Test(arguments: equivalent)
    func answersReadTheSameHoweverWritten(body: String, expected: MetricReading) throws {
        #expect(try reading(body) == expected)
    }

    @Test func labelsOfTooManySeriesAreUnescapedAndSorted() throws {
        let body = #"""
            {"status":"success","data":{"resultType":"vector","result":[
              {"metric":{"path":"/a\"b","code":"\u00e9\ud83d\ude00"},"value":[1,"1"]},
              {"metric":{"n":3},"value":[1,"2"]}, 7,
              {"metric":{"x":"y"},"value":[1,"3"]}]}}
            """#
        let error = try #require(throws: ProviderError.self) { try reading(body) }
        #expect(
            error.message
                == "the query must return one value but returned 4 series "
                + #"({code="é😀",path="/a"b"}, {n}, {}, …); "#
                + "aggregate them, e.g. with sum(...)")
    }

    @Test func anErrorAnswerCarriesItsTypeAndMessageAndAnyOtherBodyItsStatus() throws {
        let rejected = try #require(throws: ProviderError.self) {
            try reading(#"{"status":"error","errorType":"bad_data","error":"parse error: \"by\""}"#, status: 400)
        }
        #expect(rejected.code == .rejected)
        #expect(rejected.message == #"bad_data: parse error: "by""#)
        // A 200 that says error is still Prometheus' error.
        let said = try #require(throws: ProviderError.self) { try reading(#"{"status":"error"}"#) }
        #expect(said.message == "error: no message")
        // A gateway's page is not an answer: the status says what happened.
        let gateway = try #require(throws: ProviderError.self) { try reading("<html>bad gateway</html>", status: 502) }
        #expect(gateway.code == .unavailable)
        #expect(gateway.message == "<html>bad gateway</html>")
    }

    /// Answers with one byte changed, inserted or deleted, as a fuzzer would: the scanner must agree with
    /// Foundation's `JSONSerialization` on which of them are JSON at all, and never crash.
    @Test func agreesWithFoundationOnWhichMutatedAnswersAreJSON() throws {
        let seeds = [
            Self.success("vector", #"[{"metric":{"a":"b"},"value":[1.7e9,"0.13"]}]"#),
            #"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected \"by\"","warnings":[]}"#,
            #"{"status":"success","data":{"resultType":"scalar","result":[-12.5E-1,"NaN"]},"infos":[true,false,null]}"#,
        ]
        let alphabet = Array(#"{}[]",:.-+eE0123456789 \tnultrfasb\/"#.utf8)
        var random = SplitMix64(seed: 11)
        var disagreements: [String] = []
        var rejected = 0
        for round in 0..<3000 {
            var bytes = Array(seeds[round % seeds.count].utf8)
            for _ in 0...(round % 3) {
                let position = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[position] = alphabet.randomElement(using: &random)!
                case 1: bytes.insert(alphabet.randomElement(using: &random)!, at: position)
                default: bytes.remove(at: position)
                }
            }
            let body = Data(bytes)
            let foundation = (try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed])) != nil
            let scanned: Bool = body.withUnsafeBytes { buffer in
                var scanner = JSONScanner(buffer)
                do {
                    try scanner.skipValue()
                    try scanner.finish()
                    return true
                } catch {
                    return false
                }
            }
            if !scanned { rejected += 1 }
            // swift-corelibs-foundation accepts a trailing comma (`[1,]`, `{"a":1,}`), which RFC 8259 does not
            // allow and Prometheus never writes; the scanner refuses it.
            if foundation, !scanned, String(decoding: bytes, as: UTF8.self).contains(/,\s*[\]}]/) { continue }
            if foundation != scanned {
                disagreements.append("\(String(decoding: bytes, as: UTF8.self)): Foundation \(foundation)")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
        #expect(rejected > 1000)  // the mutations do break most answers: the comparison is not vacuous
    }
}

/// `MetricReading(numberText:)` trims exactly what Foundation's `trimmingCharacters(in: .whitespaces)` trims.
@Suite struct MetricsNumberTextTests {
    @Test(arguments: [
        "0.13", " 0.5 ", "\t-2\t", "\u{2003}7\u{00A0}", "\u{3000}1e3", "NaN", " nan", "+Inf ", "inf", "-Inf", "",
        "   ", "abc", "1 2", "\n1", "1\n", "0x1p3", "\u{200B}1",
    ])
    func trimsAsFoundationDoes(text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let expected: MetricReading? =
            switch trimmed.lowercased() {
            case "nan": MetricReading(number: .nan)
            case "+inf", "inf": MetricReading(number: .infinity)
            case "-inf": MetricReading(number: -.infinity)
            default: Double(trimmed).map(MetricReading.init(number:))
            }
        #expect(MetricReading(numberText: text) == expected)
    }
}

/// `percentEncoded` gives what Foundation's `addingPercentEncoding` gives with RFC 3986's unreserved characters.
@Suite struct MetricsPercentEncodingTests {
    @Test(arguments: [
        "", "up", #"sum(rate(x{code=~"5.."}[1m])) / 2"#, "a-b.c_d~e", "100%", "a+b&c=d#e?f", "ümlaut é 😀 中文",
        "line\nbreak\ttab", "\u{0}\u{7F}", "/path;x,y:z@h!$'*",
    ])
    func encodesAsFoundationDoes(text: String) {
        let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        #expect(percentEncoded(text) == text.addingPercentEncoding(withAllowedCharacters: unreserved))
    }
}
