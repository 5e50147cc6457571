import ArgumentParser
import Foundation
import Logging
import MSRP
import MSRPTransport
import NIOCore
import NIOPosix

/// Two MSRP endpoints on loopback: the whole exchange visible in one command.
struct MSRPDemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "msrp-demo",
        abstract: "Run two bare MSRP endpoints on 127.0.0.1 and exchange a few messages (the transport alone).")

    @Option(help: "Port for the receiving endpoint (0 picks a free one).")
    var port: Int = 0

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let receiver = try MSRPEndpoint(configuration: MSRPTransportConfiguration(), group: group)
        let bound = try await receiver.listen(host: "127.0.0.1", port: port)
        let inbox = receiver.createSession(
            setup: .passive, acceptTypes: [.messageCPIM, .textPlain, MediaType(type: "*", subtype: "*")],
            delegate: PrintingDelegate(name: "receiver", sendSuccessReports: true))
        Printer.line("receiver listening on 127.0.0.1:\(bound), session \(inbox.localURI)")

        let sender = try MSRPEndpoint(configuration: MSRPTransportConfiguration(chunkSize: 4096), group: group)
        let outbox = sender.createSession(setup: .active, remotePath: [inbox.localURI],
                                          delegate: PrintingDelegate(name: "sender", sendSuccessReports: false))
        try await outbox.connect()
        inbox.remotePath = [outbox.localURI]
        Printer.line("sender connected as \(outbox.localURI)")

        let cpim = """
            From: Alice <sip:alice@example.com>\r
            To: Ops <sip:ops@gw.example>\r
            DateTime: 2026-11-22T10:00:00Z\r
            Subject: deploy\r
            \r
            Content-Type: text/plain;charset=UTF-8\r
            \r
            Deploy finished ✓
            """
        let messages: [(String, MSRPOutgoingMessage)] = [
            ("text with a success report", MSRPOutgoingMessage(text: "Hello from msrpgw demo", successReport: .yes)),
            ("message/cpim", MSRPOutgoingMessage(contentType: .messageCPIM, text: cpim, successReport: .yes)),
            ("100 KiB in 4 KiB chunks", MSRPOutgoingMessage(
                contentType: MediaType(type: "application", subtype: "octet-stream"),
                body: MemoryBodySource(ByteBuffer(repeating: 0x2A, count: 100 * 1024)), successReport: .yes)),
            ("system message (Failure-Report: no)", .system("This session ends in 5 minutes")),
        ]
        for (label, message) in messages {
            let outcome = try await outbox.send(message)
            Printer.line("[sender] sent \(label) as \(message.messageID): \(outcome)")
        }
        try await Task.sleep(for: .milliseconds(300))  // let the REPORTs arrive
        outbox.close()
        await sender.shutdown()
        await receiver.shutdown()
        try await group.shutdownGracefully()
        Printer.line("demo done")
    }
}
