// swift-tools-version:6.0
import PackageDescription

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// Targets follow ../shared/DESIGN.md: protocol code never imports the queue,
// adapters never import each other, only the executable wires everything.
// CI builds with MSRPGW_WARNINGS_AS_ERRORS=1: a warning in our own targets fails
// the build (dependencies are compiled with warnings suppressed, so the flag
// cannot go on the command line for all of them).
let warningsAsErrors: [SwiftSetting] =
    ProcessInfo.processInfo.environment["MSRPGW_WARNINGS_AS_ERRORS"] == "1" ? [.unsafeFlags(["-warnings-as-errors"])] : []
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
] + warningsAsErrors

let package = Package(
    name: "msrpgw",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "msrpgw", targets: ["msrpgw"]),
        .library(name: "MSRP", targets: ["MSRP"]),
        .library(name: "MSRPTransport", targets: ["MSRPTransport"]),
        .library(name: "Events", targets: ["Events"]),
        .library(name: "Queue", targets: ["Queue"]),
        .library(name: "CPIM", targets: ["CPIM"]),
        .library(name: "SDP", targets: ["SDP"]),
        .library(name: "Gateway", targets: ["Gateway"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // memmem for the end-line search (the Swift Glibc module does not export it).
        .target(name: "CMSRPSupport"),
        .target(
            name: "MSRP",
            dependencies: ["CMSRPSupport", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MSRPTransport",
            dependencies: [
                "MSRP", "Digest", "Admission", "DirectConnect",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Who may come in: listeners' accept back-off, connection limits.
        .target(
            name: "Admission",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(name: "CPIM", swiftSettings: swiftSettings),
        .target(name: "SDP", swiftSettings: swiftSettings),
        // Digest access authentication (RFC 7616): SIP's 401/407 and MSRP relays' AUTH.
        .target(name: "Digest", dependencies: [.product(name: "Crypto", package: "swift-crypto")], swiftSettings: swiftSettings),
        .target(
            name: "SIP",
            dependencies: [
                "Digest", "Admission",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Gateway",
            dependencies: [
                "Admission",
                "MSRP", "MSRPTransport", "CPIM", "SDP", "Events", "Queue",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The event model and the adapter contract: what storage, the gateway and
        // the adapters share. Imports nothing of ours.
        .target(name: "Events", swiftSettings: swiftSettings),
        .target(
            name: "Queue",
            dependencies: [
                "Events",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Keep-alive connections to one peer, shared by the SMTP and webhook adapters.
        .target(
            name: "ConnectionPool",
            dependencies: [.product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Client connections to an address without a name lookup (all our clients).
        .target(
            name: "DirectConnect",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WebhookAdapter",
            dependencies: [
                "Events", "CPIM", "ConnectionPool", "DirectConnect",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "adapters/webhook",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MSRPGatewayClient",
            dependencies: [
                "MSRP", "MSRPTransport", "CPIM", "SDP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(name: "IRCWire", dependencies: [.product(name: "NIOCore", package: "swift-nio")], path: "adapters/irc/IRCWire", swiftSettings: swiftSettings),
        .target(
            name: "IRCClient",
            dependencies: [
                "IRCWire", "DirectConnect",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "adapters/irc/IRCClient",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "IRCAdapter",
            dependencies: [
                "IRCClient", "IRCWire", "Gateway", "Events",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "adapters/irc/IRCAdapter",
            swiftSettings: swiftSettings
        ),
        // SIP calls in and out as MSRP sessions, and the `sip-message` adapter
        // (page-mode IMDNs): the SIP side of the gateway.
        .target(
            name: "SIPAdapter",
            dependencies: [
                "SIP", "SDP", "Gateway", "Events",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "adapters/sip/SIPAdapter",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SMTPWire",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "Crypto", package: "swift-crypto")],
            path: "adapters/smtp/SMTPWire",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SMTPAdapter",
            dependencies: [
                "SMTPWire", "Events", "CPIM", "ConnectionPool", "DirectConnect",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "adapters/smtp/SMTPAdapter",
            swiftSettings: swiftSettings
        ),
        // The inbound SMTP listener: session state machine and NIO handler, no gateway.
        .target(
            name: "SMTPServer",
            dependencies: [
                "SMTPWire", "Admission",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "adapters/smtp/SMTPServer",
            swiftSettings: swiftSettings
        ),
        // Mail into the gateway: replies and bounces through the SMTP listener.
        .target(
            name: "SMTPInbound",
            dependencies: [
                "SMTPServer", "SMTPWire", "Gateway", "Events", "CPIM", "Admission",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "adapters/smtp/SMTPInbound",
            swiftSettings: swiftSettings
        ),
        // XMPP: the restricted XML stream reader and writer, JIDs (pure), the
        // XEP-0114 component connection, and the adapter and its bridging.
        .target(name: "XMPPWire", path: "adapters/xmpp/XMPPWire", swiftSettings: swiftSettings),
        .target(
            name: "XMPPClient",
            dependencies: [
                "XMPPWire", "DirectConnect",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "adapters/xmpp/XMPPClient",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "XMPPAdapter",
            dependencies: [
                "XMPPClient", "XMPPWire", "Gateway", "Events", "CPIM",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "adapters/xmpp/XMPPAdapter",
            swiftSettings: swiftSettings
        ),
        // config/msrpgw.toml, embedded in the daemon as its defaults at build time.
        .executableTarget(name: "EmbedText", swiftSettings: swiftSettings),
        .plugin(name: "EmbedDefaults", capability: .buildTool(), dependencies: ["EmbedText"]),
        .executableTarget(
            name: "msrpgw",
            dependencies: [
                "MSRP", "MSRPTransport", "Admission", "Events", "Queue", "SDP", "SIP", "Gateway", "WebhookAdapter", "SMTPAdapter", "SMTPWire", "SMTPServer", "SMTPInbound", "MSRPGatewayClient", "IRCAdapter", "IRCClient", "IRCWire", "SIPAdapter", "XMPPAdapter", "XMPPClient", "XMPPWire",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings,
            plugins: ["EmbedDefaults"]
        ),
        // Test tools: built with the tests, not part of the daemon.
        .executableTarget(
            name: "msrpgw-queue-torture",
            dependencies: ["Events", "Queue", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tests/Tools/QueueTorture",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "msrpgw-webhook-sink",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/Tools/WebhookSink",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "MSRPBenchmarks",
            dependencies: [
                "MSRP", "MSRPTransport", "CMSRPSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/MSRPBenchmarks",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "IRCBenchmarks",
            dependencies: ["IRCWire", .product(name: "NIOCore", package: "swift-nio")],
            path: "Benchmarks/IRCBenchmarks",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "XMPPBenchmarks",
            dependencies: ["XMPPWire"],
            path: "Benchmarks/XMPPBenchmarks",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "QueueBenchmarks",
            dependencies: ["Events", "Queue", "TestPeers", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/QueueBenchmarks",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "GatewayBenchmarks",
            dependencies: [
                "Gateway", "WebhookAdapter", "SMTPAdapter", "SMTPWire", "Events", "Queue", "MSRP", "MSRPTransport", "CPIM", "SDP", "IRCAdapter", "IRCClient", "IRCWire",
                "TestPeers", "MSRPGatewayClient", "XMPPWire", "XMPPClient", "XMPPAdapter",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/GatewayBenchmarks",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MSRPTests",
            dependencies: ["MSRP", "TestPeers", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MSRPTransportTests",
            dependencies: [
                "MSRP", "MSRPTransport", "Digest", "TestPeers", "DirectConnect",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "CPIMTests", dependencies: ["CPIM"], swiftSettings: swiftSettings),
        .testTarget(name: "AdmissionTests", dependencies: ["Admission", .product(name: "NIOCore", package: "swift-nio")], swiftSettings: swiftSettings),
        .testTarget(name: "SDPTests", dependencies: ["SDP"], swiftSettings: swiftSettings),
        .testTarget(
            name: "XMPPTests",
            dependencies: ["XMPPWire", "XMPPClient", "XMPPAdapter", "Events", "TestPeers", "GatewayTesting", "Queue", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "IRCTests", dependencies: ["IRCWire", "IRCClient", "IRCAdapter", .product(name: "NIOCore", package: "swift-nio")], swiftSettings: swiftSettings),
        // Test support (as hummingbird's HummingbirdTesting): an in-process
        // gateway with a scripted adapter, for the gateway's and adapters' tests.
        .target(
            name: "GatewayTesting",
            dependencies: [
                "Gateway", "Events", "Queue", "MSRP", "MSRPTransport", "TestPeers",
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/Support/GatewayTesting",
            swiftSettings: swiftSettings
        ),
        // Test support: real peers (Debian packages) as child processes in a
        // process group reaped with the test process, sipp scenarios, the test CA.
        .target(name: "CSpawn", path: "Tests/Support/CSpawn"),
        .target(
            name: "TestPeers",
            dependencies: ["CSpawn", .product(name: "NIOSSL", package: "swift-nio-ssl")],
            path: "Tests/Support/TestPeers",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SIPAdapterTests",
            dependencies: [
                "SIPAdapter", "SIP", "Gateway", "GatewayTesting", "Events", "Queue",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SIPTests", dependencies: ["SIP", "Digest", "Admission", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio")], swiftSettings: swiftSettings),
        .testTarget(
            name: "SMTPTests",
            dependencies: ["SMTPWire", "SMTPServer", "SMTPInbound", "GatewayTesting", "Events", "Queue", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WebhookAdapterTests",
            dependencies: [
                "WebhookAdapter", "Events",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(name: "MSRPGWTests", dependencies: ["msrpgw", "Admission", "TestPeers", .product(name: "NIOCore", package: "swift-nio")], swiftSettings: swiftSettings),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Gateway", "GatewayTesting", "MSRP", "MSRPTransport", "CPIM", "SDP", "Events", "Queue", "TestPeers",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QueueTests",
            dependencies: [
                "Events", "Queue", "TestPeers", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "MSRP", "MSRPTransport", "SMTPWire", "Events", "Queue", "CPIM", "SDP", "MSRPGatewayClient", "IRCClient", "IRCWire", "TestPeers",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)

// The libFuzzer target exists only when asked for (Fuzz/run.sh sets MSRPGW_FUZZ=1):
// it has no main of its own, libFuzzer brings one, so a normal build cannot link it.
if ProcessInfo.processInfo.environment["MSRPGW_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(
            name: "MSRPParserFuzz",
            dependencies: ["MSRP", .product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/MSRPParserFuzz",
            swiftSettings: [.unsafeFlags(["-parse-as-library", "-sanitize=fuzzer,address"])],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])]
        ))
    package.targets.append(
        .executableTarget(
            name: "FormatFuzz", dependencies: ["CPIM", "SDP", "SIP", "Digest", "SMTPWire", "SMTPServer", "IRCWire", "XMPPWire", .product(name: "NIOCore", package: "swift-nio")], path: "Fuzz/FormatFuzz",
            swiftSettings: [.unsafeFlags(["-parse-as-library", "-sanitize=fuzzer,address"])],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])]
        ))
}
