// swift-tools-version:6.0
import PackageDescription

// The libFuzzer target for the strategy loader. A package of its own, so the root package's
// `swift build` never needs the fuzzer runtime. Build and run (see README "Development"):
//   swift build -c release --sanitize fuzzer --package-path Fuzz
//   SWIFT_BACKTRACE=enable=no Fuzz/.build/release/StrategyFuzzer -runs=1000000 Fuzz/.build/corpus Fuzz/corpus
let package = Package(
    name: "SluiceFuzz",
    dependencies: [.package(name: "Sluice", path: "..")],
    targets: [
        .executableTarget(
            name: "StrategyFuzzer",
            dependencies: [.product(name: "SluiceCore", package: "Sluice")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
