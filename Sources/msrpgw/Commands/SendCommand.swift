import ArgumentParser
import Foundation
import Logging
import MSRP
import MSRPTransport
import NIOCore
import NIOPosix

/// An MSRP client for scripts: connects to a peer's path and sends messages.
struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Connect to an MSRP URI, send messages, print responses and REPORTs.")

    @Option(help: "The peer's MSRP URI (its a=path), e.g. msrp://127.0.0.1:2855/demo-session;tcp")
    var to: String
    @Option(help: "Message text (repeatable).") var text: [String] = []
    @Option(help: "Content type of the messages.") var contentType = "text/plain"
    @Option(help: "Chunk size in bytes.") var chunkSize = 2048
    @Flag(help: "Ask for success REPORTs.") var successReport = false
    @Option(help: "Seconds to wait for REPORTs after the last send.") var wait: Double = 1

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let peer = try MSRPURI(to)
        let type = try MediaType(contentType)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(chunkSize: chunkSize), group: group)
        let session = endpoint.createSession(setup: .active, remotePath: [peer],
                                             delegate: PrintingDelegate(name: "send", sendSuccessReports: false))
        try await session.connect()
        Printer.line("connected as \(session.localURI)")
        var failed = false
        for t in text {
            let m = MSRPOutgoingMessage(contentType: type, text: t, successReport: successReport ? .yes : .no)
            let outcome = try await session.send(m)
            Printer.line("sent \(m.messageID): \(outcome)")
            if case .rejected = outcome { failed = true }
            if case .timedOut = outcome { failed = true }
        }
        if wait > 0 { try await Task.sleep(for: .milliseconds(Int(wait * 1000))) }
        session.close()
        await endpoint.shutdown()
        try await group.shutdownGracefully()
        if failed { throw ExitCode(1) }
    }
}
