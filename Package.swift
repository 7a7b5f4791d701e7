// swift-tools-version:6.1
import PackageDescription

/// One settings list for every target (STYLE.md convention 2).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "IntelliDocs",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "intellidocs", targets: ["IntelliDocsCLI"]),
        .library(name: "Broker", targets: ["Broker"]),
        .library(name: "Storage", targets: ["Storage"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
        .library(name: "Stages", targets: ["Stages"]),
        .library(name: "Search", targets: ["Search"]),
        .library(name: "Importing", targets: ["Importing"]),
        .library(name: "ControlPlane", targets: ["ControlPlane"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.30.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.9.0"..<"5.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation.git", from: "0.9.19"),
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.25.0"),
    ],
    targets: [
        // C bindings: rabbitmq-c plus a tiny shim for the variadic `amqp_login`.
        .target(
            name: "CRabbitMQ",
            linkerSettings: [.linkedLibrary("rabbitmq")]
        ),
        .target(
            name: "Broker",
            dependencies: [
                "CRabbitMQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Settings",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Storage",
            dependencies: [
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Migrations")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Blobs",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Pipeline",
            dependencies: [
                "Broker", "Storage",
                .product(name: "Yams", package: "Yams"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            exclude: ["States.md"],
            swiftSettings: swiftSettings
        ),
        // C bindings for OCR and PDFs (pkg-config names from PLATFORM.md); each is imported by one module only.
        .systemLibrary(name: "CTesseract", pkgConfig: "tesseract", providers: [.apt(["libtesseract-dev"])]),
        .systemLibrary(name: "CLeptonica", pkgConfig: "lept", providers: [.apt(["libleptonica-dev"])]),
        .systemLibrary(name: "CPoppler", pkgConfig: "poppler-glib", providers: [.apt(["libpoppler-glib-dev"])]),
        // OpenBLAS's CBLAS (no cblas.pc on Debian: pkg-config `openblas` points at the header folder).
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // The forward pass's element-wise kernels (GELU, LayerNorm, softmax) in C, compiled for AVX-512,
        // AVX2 and baseline x86-64 with the loader picking one (Swift targets baseline x86-64 only).
        // Always optimised: the tests run debug builds, and at -O0 nothing is vectorised.
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-O2"])]
        ),
        // all-MiniLM-L6-v2 natively: safetensors, WordPiece tokenizer, BERT forward pass on OpenBLAS.
        .target(
            name: "Embedding",
            dependencies: ["COpenBLAS", "CKernels"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Extraction",
            dependencies: [
                "CPoppler",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ],
            swiftSettings: swiftSettings
        ),
        // Tesseract engine pool and Leptonica preprocessing.
        .target(
            name: "OCR",
            dependencies: ["CTesseract", "CLeptonica"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Search",
            dependencies: [
                "Storage", "Embedding",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Stages",
            dependencies: [
                "Pipeline", "Storage", "Blobs", "Extraction", "Chunking", "Similarity", "Search", "Broker", "OCR", "Embedding",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "IntelliDocsCLI",
            dependencies: [
                "Broker", "Storage", "Blobs", "Pipeline", "Stages", "Search", "Settings", "Extraction",
                "Importing", "ControlPlane", "OCR", "Embedding", "Workflows",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Chunking",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Similarity",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Importing",
            dependencies: [
                "Pipeline", "Storage", "Blobs", "Extraction",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Workflows: rules on document events, review states, signed webhooks through their own queues.
        .target(
            name: "Workflows",
            dependencies: [
                "Storage", "Pipeline", "Broker",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP control plane (DESIGN.md): routes by resource, auth, roles, quotas, audit, OpenAPI.
        .target(
            name: "ControlPlane",
            dependencies: [
                "Storage", "Pipeline", "Broker", "Blobs", "Search", "Importing", "Workflows",
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            exclude: ["Permissions.md"],
            swiftSettings: swiftSettings
        ),
        // The real-services test environment both integration test targets use.
        .target(
            name: "TestSupport",
            dependencies: [
                "Blobs", "Broker", "Settings", "Storage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ControlPlaneTests",
            dependencies: [
                "TestSupport", "ControlPlane", "Storage", "Pipeline", "Broker", "Settings", "Stages", "Search", "Blobs", "Workflows",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BrokerTests",
            dependencies: ["Broker"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExtractionTests",
            dependencies: ["Extraction", "Chunking"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OCRTests",
            dependencies: ["OCR", "Extraction", .product(name: "ZIPFoundation", package: "ZIPFoundation")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmbeddingTests",
            dependencies: ["Embedding"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntelliDocsTests",
            dependencies: [
                "TestSupport", "Broker", "Storage", "Blobs", "Pipeline", "Stages", "Search", "Settings", "Extraction",
                "Chunking", "Similarity", "Importing", "OCR", "Embedding", "Workflows",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
