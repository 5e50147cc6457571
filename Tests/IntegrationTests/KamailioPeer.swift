import Foundation
import TestPeers

/// A throwaway Kamailio (Debian) on a loopback port as SIP proxy and registrar:
/// deploy/kamailio/kamailio.cfg with the SIP role. REGISTER with digest (user
/// `msrpgw`, password `secret`, from the users table), calls to a registered
/// AOR routed to its Contact with Record-Route, other targets relayed as
/// addressed, and INVITEs and MESSAGEs from a user of the table challenged
/// with 407 (proxy authentication).
final class KamailioInstance: @unchecked Sendable {
    let port: Int
    let directory: String
    private let process: ChildProcess

    /// - Parameter extra: more of the site's settings (`#!define`s).
    init(minExpires: Int = 1, algorithm: String = "MD5", extra: String = "") async throws {
        port = try freePort()
        directory = Scratch.path("kamailio")
        let site = try KamailioSite(directory: directory, local: """
            #!define WITH_SIP
            listen=udp:127.0.0.1:\(port)
            listen=tcp:127.0.0.1:\(port)
            #!define REGISTRAR_MIN_EXPIRES \(minExpires)
            #!define AUTH_ALGORITHM "\(algorithm)"
            #!define WORKERS 2
            \(extra)
            """, users: ["msrpgw": "secret"])
        process = try site.start(name: "kamailio")
        let port = self.port
        // Bound ports are not readiness: wait until it answers a request. (Within
        // 60 s: twice, in the starved first minute of a loaded full run, it had
        // started its workers and still not answered after 30; unloaded, it
        // answers within a second.)
        let probe = try UDPProbe()
        try await process.waitUntil("answer OPTIONS on \(port)", timeout: .seconds(60)) {
            await probe.exchange("OPTIONS sip:127.0.0.1:\(port) SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:\(probe.port);branch=z9hG4bKprobe\(Int.random(in: 0...999_999))\nFrom: <sip:probe@127.0.0.1>;tag=p\nTo: <sip:127.0.0.1>\nCall-ID: probe\(Int.random(in: 0...999_999))\nCSeq: 1 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n", to: port) != nil
        }
    }

    var log: String { process.stderr + process.stdout }

    /// For a defer: see `ChildProcess.stop()`.
    func stop() { process.stop() }
    func stop() async { await process.stop() }
}
