import ArgumentParser
import Foundation
import Logging
import MSRP
import MSRPTransport
import NIOCore
import NIOPosix

/// An MSRP sink: one passive session that prints what arrives.
struct ReceiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Listen for MSRP, print every message on one session, answer with REPORTs when asked.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).") var port = 2855
    @Option(help: "Session id of the session to create.") var session = "demo-session"
    @Option(help: "Stop after this many seconds (0: run until killed).") var seconds: Double = 0

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(advertisedHost: host), group: group)
        let bound = try await endpoint.listen(host: host, port: port)
        let s = endpoint.createSession(id: session, delegate: PrintingDelegate(name: "receive", sendSuccessReports: true))
        Printer.line("listening \(host):\(bound) session \(s.localURI)")
        if seconds > 0 {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
        } else {
            while true { try await Task.sleep(for: .seconds(3600)) }
        }
        await endpoint.shutdown()
        try await group.shutdownGracefully()
    }
}
