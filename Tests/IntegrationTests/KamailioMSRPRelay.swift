import Foundation
import TestPeers

/// A throwaway Kamailio (Debian, `msrp` and `tls` modules) as an MSRP relay:
/// deploy/kamailio/kamailio.cfg with the relay role. AUTH with digest (users
/// `gateway`, `alice`, `webuser`, password `secret`, realm `msrpgw.test`), Use-Path with a session part, Expires within
/// 60-3600 s (423 otherwise), forwarding by To-Path: to the AUTHed client over
/// its own connection, from it by the next URI. TLS on `tlsPort` with the test
/// certificate, TCP on `port`; with `webSocket`, MSRP over WebSocket (RFC 7977,
/// the `websocket` module, Debian kamailio-websocket-modules) on `wsPort`, its
/// clients reached through the TCP listener.
final class KamailioMSRPRelay: @unchecked Sendable {
    let tlsPort: Int
    let port: Int
    /// The WebSocket listener (plain WS), when asked for.
    let wsPort: Int?
    let directory: String
    let certificates: TestCertificates
    private let process: ChildProcess

    init(webSocket: Bool = false) async throws {
        if webSocket {
            let modules = ["x86_64", "aarch64"].map { "/usr/lib/\($0)-linux-gnu/kamailio/modules/websocket.so" }
            guard modules.contains(where: FileManager.default.fileExists(atPath:)) else {
                throw Peers.PeerMissing(description: "Kamailio's websocket module is not installed: apt-get install kamailio-websocket-modules")
            }
        }
        (tlsPort, port) = (try freePort(), try freePort())
        wsPort = webSocket ? try freePort() : nil
        certificates = try await TestCertificates.make()
        directory = try Scratch.directory("kamailio-msrp")
        try """
            [server:default]
            method = TLSv1.2+
            verify_certificate = no
            require_certificate = no
            private_key = \(certificates.keyPath)
            certificate = \(certificates.certPath)

            [client:default]
            method = TLSv1.2+
            verify_certificate = no
            require_certificate = no
            """.write(toFile: directory + "/tls.cfg", atomically: true, encoding: .utf8)
        let site = try KamailioSite(directory: directory, local: Self.siteSettings(tlsPort: tlsPort, port: port, wsPort: wsPort, tlsConfig: directory + "/tls.cfg"),
                                    users: ["gateway": "secret", "alice": "secret", "webuser": "secret"])
        process = try site.start(name: "kamailio-msrp", readable: [certificates.directory, certificates.keyPath, certificates.certPath, directory + "/tls.cfg"])
        // Ports are bound before the TLS key is loaded: wait a little past the open port.
        let (port, tlsPort, wsPort) = (self.port, self.tlsPort, self.wsPort)
        try await process.waitUntil("listen") { tcpPortAccepts(tlsPort) && tcpPortAccepts(port) && wsPort.map(tcpPortAccepts) ?? true }
        // The TLS listener is ready once it completes a handshake, not when the port is open.
        let certificates = self.certificates
        try await process.waitUntil("complete a TLS handshake") { await certificates.handshakes(port: tlsPort) }
    }

    var log: String { process.stderr + process.stdout }

    /// The `[msrp]` lines that make a test gateway reach its peers through this
    /// relay over TLS (user `gateway`, trusting the test CA).
    var gatewayClientSettings: String {
        """
        ca_file = "\(certificates.caPath)"
        relay = "msrps://127.0.0.1:\(tlsPort);tcp"
        relay_username = "gateway"
        relay_password = "secret"
        """
    }


    /// For a defer: see `ChildProcess.stop()`.
    func stop() { process.stop() }
    func stop() async { await process.stop() }

    /// msrpgw-local.cfg for the relay role: TLS and TCP listeners, with
    /// `wsPort` a WebSocket one whose clients are reached through the TCP one.
    static func siteSettings(tlsPort: Int, port: Int, wsPort: Int?, tlsConfig: String) -> String {
        """
        #!define WITH_MSRP_RELAY
        #!define WITH_TLS
        #!define TLS_CONFIG "\(tlsConfig)"
        #!define AUTH_REALM "msrpgw.test"
        #!define WORKERS 1
        listen=tls:127.0.0.1:\(tlsPort)
        listen=tcp:127.0.0.1:\(port)
        """ + (wsPort.map { "\n#!define WITH_WEBSOCKET\n#!define MSRP_TCP_HOP \"msrp://127.0.0.1:\(port)\"\nlisten=tcp:127.0.0.1:\($0)" } ?? "")
    }
}
