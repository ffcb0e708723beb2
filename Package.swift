// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "syncnode",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "syncnode", targets: ["syncnode"]),
        .library(name: "SyncNode", targets: ["SyncNode"]),
        .library(name: "SyncProtocol", targets: ["SyncProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "3.12.3"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", exact: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", exact: "2.0.1"),
        // Imported directly by the server (Hummingbird brings them; declared so that every imported
        // module is a declared dependency).
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types.git", exact: "1.8.0"),
        // The web pages: templates (HTML-escaped by default) and password hashes.
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", exact: "2.1.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", exact: "2.5.0"),
        // `/metrics`: counted through swift-metrics, written out by swift-prometheus.
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        // HQ's merged view mirrored into PostgreSQL for analysts' tools (`syncnode mirror`).
        .package(url: "https://github.com/vapor/postgres-nio.git", exact: "1.33.2"),
    ],
    targets: [
        .target(
            name: "SyncProtocol",
            dependencies: []
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CXlsxWriter",
            pkgConfig: "xlsxwriter",
            providers: [.apt(["libxlsxwriter-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(
            name: "SyncNode",
            dependencies: [
                "SyncProtocol",
                "CCurl",
                "CZlib",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            resources: [.embedInCode("Programme/dongli-2017.json")]
        ),
        // What people see: the web pages (dashboard, forms, login) and the report renderings the
        // CLI shares with them (CSV, JSON, the XLSX workbook).
        .target(
            name: "SyncWeb",
            dependencies: [
                "SyncNode",
                "SyncProtocol",
                "CXlsxWriter",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            resources: [
                .embedInCode("Templates/layout.mustache"), .embedInCode("Templates/dashboard.mustache"),
                .embedInCode("Templates/login.mustache"), .embedInCode("Templates/entry.mustache"), .embedInCode("Templates/form.mustache"),
                .embedInCode("Templates/mine.mustache"), .embedInCode("Templates/conflicts.mustache"), .embedInCode("Templates/message.mustache"),
                .embedInCode("Templates/table.mustache"), .embedInCode("Templates/password.mustache"), .embedInCode("Templates/report.mustache"),
                .embedInCode("Templates/submissions.mustache"), .embedInCode("Templates/record.mustache"), .embedInCode("Static/offline.js"),
                .embedInCode("Static/sw.js"), .embedInCode("Static/attach.js"),
                .embedInCode("Static/manifest.webmanifest"), .embedInCode("Static/icon.svg"),
                .embedInCode("Templates/site.css"),
            ]
        ),
        // The PostgreSQL mirror of the node's merged view: reads the node, writes PostgreSQL.
        .target(
            name: "SyncMirror",
            dependencies: [
                "SyncNode",
                "SyncProtocol",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Tools/: what tests and fault runs use, built here but not offered as products: the fault
        // proxy, child processes, the chaos harness and the fuzzer.
        .target(name: "FaultProxy", dependencies: ["SyncProtocol"], path: "Tools/FaultProxy"),
        // Child processes without Foundation's `Process` (see its comment): tests and tools only.
        .target(name: "ChildProcess", path: "Tools/ChildProcess"),
        // A PostgreSQL server of its own on loopback, for the mirror's tests and benchmark.
        .target(name: "PostgresTestServer", dependencies: ["ChildProcess"], path: "Tools/PostgresTestServer"),
        // Its folder differs from the library's by more than letter case (macOS file systems
        // merge names that differ only in case).
        .executableTarget(
            name: "faultproxy",
            dependencies: ["FaultProxy", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/FaultProxyTool"),
        .executableTarget(
            name: "syncnode-chaos",
            dependencies: [
                "ChildProcess",
                "FaultProxy",
                "SyncProtocol",
                "SyncNode",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/Chaos"
        ),
        .executableTarget(
            name: "syncnode-fuzz",
            dependencies: [
                "SyncNode",
                "SyncProtocol",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/Fuzz"
        ),
        .executableTarget(
            name: "syncnode",
            dependencies: [
                "SyncNode",
                "SyncWeb",
                "SyncMirror",
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                "SyncProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "syncnode-bench",
            dependencies: [
                "ChildProcess",
                "PostgresTestServer",
                "SyncMirror",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                "SyncNode",
                "SyncProtocol",
                "SyncWeb",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/SyncBench"
        ),
        .testTarget(
            name: "SyncNodeTests",
            dependencies: [
                "ChildProcess",
                "PostgresTestServer",
                "SyncNode",
                "SyncMirror",
                "SyncWeb",
                "SyncProtocol",
                "syncnode",
                "FaultProxy",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
            ],
            exclude: ["Fixtures"]
        ),
        // The pure layer alone: the sync round's decisions, transaction checks (no store, no I/O).
        .testTarget(
            name: "SyncProtocolTests",
            dependencies: ["SyncProtocol"]
        ),
        .testTarget(
            name: "ConflictTests",
            dependencies: [
                "SyncNode",
                "SyncProtocol",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            exclude: ["SPEC.md", "Fixtures"]
        ),
    ]
)

// The project's own Swift code builds without a warning: the compiler turns each into an error
// (dependencies' warnings stay theirs).
for target in package.targets where [.regular, .executable, .test].contains(target.type) {
    target.swiftSettings = (target.swiftSettings ?? []) + [.treatAllWarnings(as: .error)]
}
