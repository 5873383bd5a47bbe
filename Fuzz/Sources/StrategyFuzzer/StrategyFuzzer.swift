import SluiceCore

/// One fuzz input: any bytes, read as a strategy file. Beyond not crashing, not hanging and not
/// leaking, it checks what must hold for every input: errors carry 1-based positions in order,
/// and every valid strategy's canonical JSON loads back to the same strategy.
@_cdecl("LLVMFuzzerTestOneInput")
public func strategyFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let result = StrategyLoader.load(yaml: text, file: "fuzz.yaml")
    var previous = (line: 0, column: 0)
    for error in result.errors {
        precondition(error.line >= 1 && error.column >= 1, "position below 1: \(error)")
        precondition((error.line, error.column) >= previous, "errors out of order at \(error)")
        previous = (error.line, error.column)
        _ = error.description
    }
    precondition(result.strategies.count == result.positions.count, "strategies and positions differ in count")
    let context = TemplateContext(
        name: "n", namespace: "ns", stable: "s", canary: "c", version: "v", interval: .seconds(10)
    )
    for strategy in result.strategies {
        let json = strategy.canonicalJSON(pretty: size % 2 == 0)
        let back = StrategyLoader.load(yaml: json, file: "canonical.json")
        precondition(back.errors.isEmpty && back.strategies == [strategy], "canonical JSON did not load back: \(json)")
        for (index, _) in strategy.stages.enumerated() {
            for check in strategy.checks(inStage: index) { _ = check.renderedQuery(context) }
        }
    }
    return 0
}
