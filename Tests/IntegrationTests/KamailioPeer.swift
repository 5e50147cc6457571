import Foundation
import TestPeers

/// A throwaway Kamailio (Debian) on a loopback port as SIP proxy and registrar,
/// from ../shared/peers/kamailio/registrar.cfg: REGISTER with digest (any user
/// whose auth name equals the To user, password `secret`), calls to a registered
/// AOR routed to its Contact with Record-Route, other targets relayed as addressed,
/// and INVITEs from `msrpgw@` challenged with 407 (proxy authentication).
final class KamailioInstance: @unchecked Sendable {
    let port: Int
    let directory: String
    private let process: ChildProcess

    init(minExpires: Int = 1, algorithm: String = "MD5") async throws {
        let kamailio = try Peers.require("kamailio", package: "kamailio")
        port = try freePort()
        directory = NSTemporaryDirectory() + "msrpgw-kamailio-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let cfg = directory + "/kamailio.cfg"
        try Self.configuration(port: port, minExpires: minExpires, algorithm: algorithm).write(toFile: cfg, atomically: true, encoding: .utf8)
        // Root (CI) drops to the kamailio user, as the Debian package runs it.
        let user = getuid() == 0 && getpwnam("kamailio") != nil ? ["-u", "kamailio", "-g", "kamailio"] : []
        process = try ChildProcess(kamailio, ["-DD", "-E", "-f", cfg, "-m", "32", "-M", "8", "-Y", directory] + user, name: "kamailio")
        // Bound ports are not readiness: wait until it answers a request.
        let probe = try UDPProbe()
        try await process.waitUntil("answer OPTIONS on \(port)") {
            probe.exchange("OPTIONS sip:127.0.0.1:\(port) SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:\(probe.port);branch=z9hG4bKprobe\(Int.random(in: 0...999_999))\nFrom: <sip:probe@127.0.0.1>;tag=p\nTo: <sip:127.0.0.1>\nCall-ID: probe\(Int.random(in: 0...999_999))\nCSeq: 1 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n", to: port) != nil
        }
    }

    var log: String { process.stderr + process.stdout }

    func stop() { process.stop() }

    static func configuration(port: Int, minExpires: Int, algorithm: String) -> String {
        """
        #!KAMAILIO
        debug=2
        log_stderror=yes
        children=2
        tcp_children=2
        auto_aliases=no
        dns=no
        rev_dns=no
        listen=udp:127.0.0.1:\(port)
        listen=tcp:127.0.0.1:\(port)
        loadmodule "tm.so"
        loadmodule "sl.so"
        loadmodule "rr.so"
        loadmodule "pv.so"
        loadmodule "maxfwd.so"
        loadmodule "textops.so"
        loadmodule "siputils.so"
        loadmodule "usrloc.so"
        loadmodule "registrar.so"
        loadmodule "auth.so"
        loadmodule "xlog.so"
        modparam("registrar", "min_expires", \(minExpires))
        modparam("auth", "algorithm", "\(algorithm)")

        request_route {
          if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
          if (has_totag()) {
            if (!loose_route() && uri == myself && !lookup("location")) {
              if (!is_method("ACK")) sl_send_reply("404", "Not here");
              exit;
            }
            t_relay(); exit;
          }
          if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
          if (is_method("REGISTER")) {
            xlog("L_INFO", "REGISTER from $fu expires $hdr(Expires) auth $au\\n");
            if (!pv_auth_check("$td", "secret", "0", "1")) { auth_challenge("$td", "0"); exit; }
            if (!save("location")) sl_reply_error();
            exit;
          }
          if (is_method("INVITE|MESSAGE") && $fU == "msrpgw") {
            if (!pv_proxy_authorize("$fd", "secret", "0")) { proxy_challenge("$fd", "0"); exit; }
            xlog("L_INFO", "$rm authenticated as $au\n");
            consume_credentials();
          }
          if (is_method("INVITE")) record_route();
          if (uri == myself) {
            if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
          }
          t_relay();
        }

        onreply_route {
          if ($rs == 200 && $rm == "INVITE") xlog("L_INFO", "200 to INVITE with Record-Route $hdr(Record-Route)\n");
        }
        """
    }
}
