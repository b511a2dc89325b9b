// swift-tools-version:6.1
// TelemetryEngine: see README.md. Module layout and dependency direction: docs/architecture.md.
import PackageDescription

let package = Package(
    name: "TelemetryEngine",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "telemetry", targets: ["telemetry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        // C libraries (Debian packages named in README.md; installed by .ci/run).
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLZMA", pkgConfig: "liblzma", providers: [.apt(["liblzma-dev"])]),
        .systemLibrary(name: "CEditLine", pkgConfig: "libedit", providers: [.apt(["libedit-dev"])]),
        .target(
            name: "CSimdjson",
            cxxSettings: [.define("SIMDJSON_THREADS_ENABLED", to: "1")],
            linkerSettings: [.linkedLibrary("simdjson")]
        ),

        // Pipeline stages, dependencies pointing down only.
        .target(name: "TelemetryCore"),
        .target(name: "TelemetryCompression", dependencies: ["TelemetryCore", "CLZMA", "CZlib"]),
        .target(name: "TelemetryConvert", dependencies: ["TelemetryCore", "TelemetryCompression", "CSimdjson"]),
        .target(
            name: "TelemetryStore",
            dependencies: ["TelemetryCore", "TelemetryCompression", "TelemetryConvert", "CSQLite", "CSimdjson"]
        ),
        .target(name: "TelemetryJobs", dependencies: ["TelemetryStore", "TelemetryConvert", "TelemetryCore"]),
        .target(name: "TelemetryExport", dependencies: ["TelemetryStore", "TelemetryCompression", "TelemetryCore"]),
        // The use cases both front doors call (docs/architecture.md "Operations").
        .target(name: "TelemetryOperations",
                dependencies: ["TelemetryJobs", "TelemetryExport", "TelemetryStore", "TelemetryConvert", "TelemetryCore"]),
        .target(
            name: "TelemetryShell",
            dependencies: ["TelemetryOperations", "TelemetryStore", "TelemetryJobs", "TelemetryCore", "CEditLine"]
        ),
        .target(
            name: "TelemetryIngest",
            dependencies: [
                "TelemetryCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .target(name: "TelemetryS3", dependencies: ["TelemetryCore", .product(name: "Crypto", package: "swift-crypto")]),
        .executableTarget(
            name: "telemetry",
            dependencies: [
                "TelemetryCore", "TelemetryCompression", "TelemetryConvert", "TelemetryStore", "TelemetryShell", "TelemetryIngest",
                "TelemetryS3", "TelemetryJobs", "TelemetryOperations", "TelemetryExport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // Job scripts (docs/jobs.md) bind to TelemetryJobs' symbols in this executable at dlopen.
            linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic"])]
        ),

        // Tests.
        .target(name: "TelemetryTestSupport", dependencies: ["TelemetryCore"], path: "Sources/TelemetryTestSupport"),
        .testTarget(name: "TelemetryCoreTests", dependencies: ["TelemetryCore", "TelemetryTestSupport"]),
        .testTarget(
            name: "TelemetryCompressionTests",
            dependencies: ["TelemetryCompression", "TelemetryCore", "TelemetryTestSupport"]
        ),
        .testTarget(
            name: "TelemetryIngestTests",
            dependencies: [
                "TelemetryIngest", "TelemetryCore", "TelemetryCompression", "TelemetryTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "TelemetryConvertTests",
            dependencies: ["TelemetryConvert", "TelemetryCompression", "TelemetryTestSupport"]
        ),
        .testTarget(
            name: "TelemetryStoreTests",
            dependencies: ["TelemetryStore", "TelemetryConvert", "TelemetryCompression", "TelemetryTestSupport"]
        ),
        .testTarget(
            name: "TelemetryJobsTests",
            dependencies: ["TelemetryJobs", "TelemetryStore", "TelemetryConvert", "TelemetryCore", "TelemetryTestSupport"]
        ),
        .testTarget(
            name: "TelemetryShellTests",
            dependencies: ["TelemetryShell", "TelemetryOperations", "TelemetryStore", "TelemetryTestSupport"]
        ),
        .testTarget(
            name: "TelemetryS3Tests",
            dependencies: ["TelemetryS3", "TelemetryCore", "TelemetryTestSupport", "telemetry",
                           .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["moto_fixture.py"]
        ),
        .testTarget(
            name: "TelemetryExportTests",
            dependencies: ["TelemetryExport", "TelemetryStore", "TelemetryCompression", "TelemetryTestSupport", "telemetry"],
            exclude: ["export_readers.py"]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["telemetry", "TelemetryStore", "TelemetryTestSupport"],
            exclude: ["Golden", "truth_reference.py"]
        ),
    ],
    cxxLanguageStandard: .cxx17
)
