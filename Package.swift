// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "cairn",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cairn", targets: ["cairn"]),
        .library(name: "CairnCore", targets: ["CairnCore"]),
        .library(name: "CloudMapWire", targets: ["CloudMapWire"]),
        .library(name: "DNSWire", targets: ["DNSWire"]),
        .library(name: "CairnTesting", targets: ["CairnTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1", traits: []),
        .package(url: "https://github.com/vapor/sqlite-nio.git", exact: "1.13.2"),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", exact: "1.35.2"),
        .package(url: "https://github.com/apple/swift-collections.git", exact: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", exact: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", exact: "2.1.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", exact: "1.33.2"),
    ],
    targets: [
        .target(
            name: "CairnCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HashTreeCollections", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "CloudMapWire", dependencies: ["CairnCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings),
        .target(
            name: "CairnClient",
            dependencies: ["CloudMapWire", .product(name: "Crypto", package: "swift-crypto"), .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings),
        .target(name: "DNSWire", dependencies: [.product(name: "NIOCore", package: "swift-nio")], swiftSettings: swiftSettings),
        .target(
            name: "CairnStore",
            dependencies: [
                "CairnCore",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // PostgreSQL (cluster mode) in its own target: postgres-nio takes minutes to build, and nothing below
        // CairnServer waits for it.
        .target(
            name: "CairnPostgres",
            dependencies: [
                "CairnCore", "CairnStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(name: "CCairnSocket"),
        .target(
            name: "CairnDNS",
            dependencies: [
                "CairnCore", "DNSWire", "CCairnSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CairnHealth",
            dependencies: [
                "CairnCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CairnAPI",
            dependencies: [
                "CairnCore", "CloudMapWire", "CairnDNS", "DNSWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CairnServer",
            dependencies: [
                "CairnCore", "CairnStore", "CairnPostgres", "CairnAPI", "CairnDNS", "DNSWire", "CairnHealth", "CloudMapWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CairnCLI",
            dependencies: [
                "CairnServer", "CairnClient", "CloudMapWire", "CairnCore", "CairnStore", "CairnPostgres", "CairnHealth",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "cairn", dependencies: ["CairnCLI"], swiftSettings: swiftSettings),
        .executableTarget(name: "cairn-dns-fuzz", dependencies: ["CairnTesting", "CairnDNS", "DNSWire"], swiftSettings: swiftSettings),
        // bench/api.sh: a bare Hummingbird route with a precomputed body, the HTTP stack's ceiling beside Cairn.
        .executableTarget(
            name: "cairn-bench-http", dependencies: [.product(name: "Hummingbird", package: "hummingbird")], swiftSettings: swiftSettings),
        .target(
            name: "CairnTesting",
            dependencies: [
                "CairnServer", "CairnCore", "CairnDNS", "DNSWire", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "CairnCoreTests", dependencies: ["CairnCore"], swiftSettings: swiftSettings),
        .testTarget(name: "CloudMapWireTests", dependencies: ["CloudMapWire"], swiftSettings: swiftSettings),
        .testTarget(name: "CairnClientTests", dependencies: ["CairnClient"], swiftSettings: swiftSettings),
        .testTarget(
            name: "CairnHealthTests",
            dependencies: ["CairnHealth", "CairnCore", "CairnTesting", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings),
        .testTarget(name: "DNSWireTests", dependencies: ["DNSWire"], swiftSettings: swiftSettings),
        .testTarget(
            name: "CairnDNSTests",
            dependencies: ["CairnDNS", "CairnCore", "DNSWire", "CairnTesting", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "CairnStoreTests",
            dependencies: [
                "CairnStore", "CairnPostgres", "CairnCore", .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "CairnAPITests",
            dependencies: ["CairnTesting", "CairnAPI", "CloudMapWire", "CairnCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
    ]
)
