// swift-tools-version:6.0
import PackageDescription

// Benchmarks live in their own package so the root package (and the `sluice` binary) never compiles
// AsyncHTTPClient or SwiftNIO. Run: swift run -c release --package-path Benchmarks sluice-bench http
let package = Package(
    name: "SluiceBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Sluice", path: ".."),
        .package(url: "https://github.com/swift-server/async-http-client", exact: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .executableTarget(
            name: "sluice-bench",
            dependencies: [
                .product(name: "SluiceHTTP", package: "Sluice"),
                .product(name: "SluiceCore", package: "Sluice"),
                .product(name: "SluiceProviders", package: "Sluice"),
                .product(name: "SluiceController", package: "Sluice"),
                .product(name: "SluiceStore", package: "Sluice"),
                .product(name: "SluiceTestSupport", package: "Sluice"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
