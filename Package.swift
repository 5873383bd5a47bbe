// swift-tools-version:6.0
import PackageDescription

// Layering (docs/architecture.md): SluiceCore imports no networking, no logging, no curl;
// only SluiceHTTP and CCurl know libcurl; test support is never linked into the `sluice` binary.
let package = Package(
    name: "Sluice",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sluice", targets: ["sluice"]),
        // For the fuzzer package in Fuzz/ (and other tools that read strategies).
        .library(name: "SluiceCore", targets: ["SluiceCore"]),
        // For Benchmarks/ (a separate package) to measure the client; the `sluice` binary does not need it.
        .library(name: "SluiceHTTP", targets: ["SluiceHTTP"]),
        // For Benchmarks/ to drive the real router, controller, store and test servers (Caddy); `sluice` does not
        // link SluiceTestSupport.
        .library(name: "SluiceProviders", targets: ["SluiceProviders"]),
        .library(name: "SluiceController", targets: ["SluiceController"]),
        .library(name: "SluiceStore", targets: ["SluiceStore"]),
        .library(name: "SluiceTestSupport", targets: ["SluiceTestSupport"]),
        .executable(name: "sluice-demo-app", targets: ["sluice-demo-app"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // Trace context (W3C traceparent) through the API, the controller and every outbound call (docs/operations.md);
        // already in the graph through Hummingbird and postgres-nio, so they cost no build time.
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-w3c-trace-context", from: "1.0.0"),
        // /metrics in the Prometheus text format (docs/operations.md); swift-metrics and swift-atomics, all it needs,
        // are already in the graph through Hummingbird and SwiftNIO.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(
            name: "SluiceCore",
            dependencies: ["CLibYAML", .product(name: "Yams", package: "Yams")]
        ),
        // libyaml's API, to count a file's parse events before composing it (YAMLBudget); the code is the
        // libyaml that Yams compiles in, so this is only its header (Yams 6.2.2's Sources/CYaml/include/yaml.h).
        .systemLibrary(name: "CLibYAML", path: "Sources/CLibYAML"),
        .systemLibrary(
            name: "CCurl",
            path: "Sources/CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .target(
            name: "SluiceHTTP",
            dependencies: [
                "CCurl", "SluiceCore", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "W3CTraceContext", package: "swift-w3c-trace-context"),
            ]
        ),
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        .target(name: "SluiceProviders", dependencies: ["SluiceCore", "SluiceHTTP", "SluiceKubernetes"]),
        .target(
            name: "SluiceStore",
            dependencies: [
                "SluiceCore", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "SluiceController",
            dependencies: [
                "SluiceCore", "SluiceStore", "SluiceHTTP", "SluiceProviders",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "SluiceKubernetes",
            dependencies: [
                "SluiceCore", "SluiceHTTP", .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SluiceAPI",
            dependencies: [
                "SluiceCore", "SluiceStore", "SluiceController", "SluiceProviders", "SluiceKubernetes", "SluiceHTTP",
                "CMalloc",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                // RSA signature checks of OIDC tokens (RS256); ES256 is in Crypto.
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The dashboard's files, compiled into the binary as byte arrays (PackageResources.index_html, ...).
            resources: [.embedInCode("Dashboard/ui")]
        ),
        .executableTarget(
            name: "sluice",
            dependencies: [
                "SluiceCore",
                "SluiceProviders",
                "SluiceAPI",
                "SluiceHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(name: "SluiceTestSupport", dependencies: ["SluiceHTTP"], path: "Tests/Support",
            exclude: ["servers"]),
        .testTarget(name: "SluiceCoreTests", dependencies: ["SluiceCore", "SluiceTestSupport"]),
        .testTarget(name: "SluiceHTTPTests", dependencies: ["SluiceHTTP", "SluiceTestSupport"]),
        .testTarget(name: "SluiceCLITests", dependencies: ["SluiceTestSupport"]),
        .testTarget(
            name: "SluiceProvidersTests",
            dependencies: ["SluiceProviders", "SluiceHTTP", "SluiceCore", "SluiceKubernetes", "SluiceTestSupport"]
        ),
        .target(
            name: "SluiceRuntimeTestSupport", dependencies: ["SluiceCore", "SluiceController", "SluiceHTTP"],
            path: "Tests/RuntimeSupport"
        ),
        .testTarget(
            name: "SluiceStoreTests",
            dependencies: [
                "SluiceStore", "SluiceCore", "SluiceTestSupport", "SluiceRuntimeTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // Test-only: the controller in its own process for the crash test; never linked into `sluice`.
        .executableTarget(
            name: "sluice-crash-harness",
            dependencies: [
                "SluiceController", "SluiceStore", "SluiceCore", "SluiceHTTP", "SluiceProviders",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/CrashHarness"
        ),
        .testTarget(
            name: "SluiceControllerTests",
            dependencies: [
                "SluiceController", "SluiceStore", "SluiceCore", "SluiceHTTP", "SluiceProviders", "SluiceTestSupport",
                "SluiceRuntimeTestSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "SluiceKubernetesTests",
            dependencies: [
                "SluiceKubernetes", "SluiceHTTP", "SluiceCore", "SluiceTestSupport", "SluiceController", "SluiceStore",
                "SluiceProviders", "SluiceRuntimeTestSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SluiceAPITests",
            dependencies: ["SluiceAPI", "SluiceCore", "SluiceHTTP", "SluiceTestSupport", "SluiceStore", "SluiceController",
                "SluiceKubernetes", .product(name: "Yams", package: "Yams"),
                .product(name: "_CryptoExtras", package: "swift-crypto"), .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // The demo: an HTTP service and a load generator, never linked into `sluice`.
        .target(
            name: "SluiceDemo",
            dependencies: [
                "SluiceCore", "SluiceHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "sluice-demo-app",
            dependencies: ["SluiceDemo", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(
            name: "SluiceE2ETests",
            // The `sluice` and `sluice-demo-app` binaries run as subprocesses; SluiceAPI only for the token hash.
            dependencies: ["SluiceDemo", "SluiceCore", "SluiceHTTP", "SluiceAPI", "SluiceTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
