import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import MSRP
import MSRPGatewayClient
import MSRPTransport
import NIOCore
import NIOPosix

/// An MSRP client for scripts. With `--api` it offers a session to a gateway
/// through its HTTP API and sends CPIM messages to `--cpim-to`; with `--to` it
/// connects straight to a peer's MSRP URI. Prints each outcome, then the
/// REPORTs and messages (IMDNs) that arrive within `--wait` seconds.
struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send MSRP messages (through a gateway's API, or to an MSRP URI) and print responses, REPORTs and IMDNs.")

    @Option(help: "A gateway's API, e.g. http://127.0.0.1:8080: offer a session there.") var api: String?
    @Option(help: "The API's bearer token.") var token: String?
    @Option(help: "With --api: the CPIM To of the messages, e.g. sip:ops@gw.example.") var cpimTo: String?
    @Option(help: "With --api: our address (the CPIM From, and the session's peer).") var from = "sip:script@msrpgw.invalid"
    @Option(help: "Without --api: the peer's MSRP URI (its a=path), e.g. msrp://127.0.0.1:2855/demo-session;tcp")
    var to: String?
    @Option(help: "Message text (repeatable).") var text: [String] = []
    @Option(help: "Content type of the messages (without --api).") var contentType = "text/plain"
    @Option(help: "Chunk size in bytes.") var chunkSize = 2048
    @Flag(help: "Ask for success REPORTs.") var successReport = false
    @Option(help: "Seconds to wait for REPORTs and IMDNs after the last send.") var wait: Double = 1

    func validate() throws {
        guard (api == nil) != (to == nil) else { throw ValidationError("give either --api (with --cpim-to) or --to") }
        if api != nil, cpimTo == nil { throw ValidationError("--api needs --cpim-to") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let endpoint = try MSRPEndpoint(configuration: MSRPTransportConfiguration(chunkSize: chunkSize), group: group)
        var failed = false
        if let api, let cpimTo {
            let http = HTTPClient(eventLoopGroup: group)
            let client = GatewayClient(name: "msrpgw send", address: from, endpoint: endpoint, http: http, api: api, token: token,
                                       onEvent: { Printer.line($0) })
            do {
                try await client.open()
                Printer.line("session \(client.sessionID ?? "?") open")
                for t in text {
                    let id = MSRPIdentifier.make()
                    let outcome = try await client.send(t, to: cpimTo, messageID: id, successReport: successReport)
                    Printer.line("sent \(id): \(outcome)")
                    if case .rejected = outcome { failed = true }
                    if case .timedOut = outcome { failed = true }
                }
                if wait > 0 { try await Task.sleep(for: .milliseconds(Int(wait * 1000))) }
            } catch {
                Printer.line("error: \(error)")
                failed = true
            }
            client.session?.close()
            try await http.shutdown()
        } else if let to {
            let peer = try MSRPURI(to)
            let type = try MediaType(contentType)
            let session = endpoint.createSession(setup: .active, remotePath: [peer],
                                                 delegate: PrintingDelegate(name: "send", sendSuccessReports: false))
            try await session.connect()
            Printer.line("connected as \(session.localURI)")
            for t in text {
                let m = MSRPOutgoingMessage(contentType: type, text: t, successReport: successReport ? .yes : .no)
                let outcome = try await session.send(m)
                Printer.line("sent \(m.messageID): \(outcome)")
                if case .rejected = outcome { failed = true }
                if case .timedOut = outcome { failed = true }
            }
            if wait > 0 { try await Task.sleep(for: .milliseconds(Int(wait * 1000))) }
            session.close()
        }
        await endpoint.shutdown()
        try await group.shutdownGracefully()
        if failed { throw ExitCode(1) }
    }
}
