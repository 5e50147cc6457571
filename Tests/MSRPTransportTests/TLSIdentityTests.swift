import MSRP
import NIOPosix
import Testing
import TestPeers

@testable import MSRPTransport

/// An msrps connection to an IP address checks the certificate's IP address
/// names (a valid certificate for another name must not do): NIOSSL validates
/// the connected address against the IP SANs when there is no host name.
@Suite(.serialized) struct TLSIdentityTests {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    func connect(serverNames: String) async throws -> Bool {
        let certs = try await TestCertificates.make(subjectAltName: serverNames)
        var serverConfig = MSRPTransportConfiguration()
        serverConfig.tlsServer = try certs.serverTLS()
        var clientConfig = MSRPTransportConfiguration()
        clientConfig.tlsClient = try certs.clientTLS()
        let receiver = try MSRPEndpoint(configuration: serverConfig, group: Self.group)
        let sender = try MSRPEndpoint(configuration: clientConfig, group: Self.group)
        defer { Task { await sender.shutdown(); await receiver.shutdown() } }
        try await receiver.listen(host: "127.0.0.1", port: 0, secure: true)
        let incoming = receiver.createSession(secure: true, setup: .passive, delegate: RecordingDelegate())
        let outgoing = sender.createSession(secure: true, setup: .active, remotePath: [incoming.localURI], delegate: RecordingDelegate())
        incoming.remotePath = [outgoing.localURI]
        do {
            try await outgoing.connect()
            return try await outgoing.send(MSRPOutgoingMessage(messageID: "tlsid01", text: "hello")) == .accepted
        } catch {
            return false
        }
    }

    @Test func aCertificateWithTheAddressIsAccepted() async throws {
        #expect(try await connect(serverNames: "DNS:localhost,IP:127.0.0.1"))
    }

    @Test func aCertificateForAnotherAddressOrOnlyANameIsRefused() async throws {
        #expect(try await connect(serverNames: "DNS:localhost") == false)
        #expect(try await connect(serverNames: "IP:127.0.0.2") == false)
    }
}
