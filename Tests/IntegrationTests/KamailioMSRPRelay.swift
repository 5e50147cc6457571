import Foundation

/// A throwaway Kamailio (Debian, `msrp` and `tls` modules) as an MSRP relay, from
/// ../shared/peers/kamailio/msrp.cfg: AUTH with digest (any user, password
/// `secret`, realm `msrpgw.test`), Use-Path with a session part, Expires within
/// 60-3600 s (423 otherwise), forwarding by To-Path: to the AUTHed client over
/// its own connection, from it by the next URI. TLS on `tlsPort` with the test
/// certificate, TCP on `port`.
final class KamailioMSRPRelay: @unchecked Sendable {
    let tlsPort: Int
    let port: Int
    let directory: String
    let certificates: IntegrationCertificates
    private let process: ChildProcess

    init() async throws {
        let kamailio = try Peers.require("kamailio", package: "kamailio")
        (tlsPort, port) = (try freePort(), try freePort())
        certificates = try IntegrationCertificates.make()
        directory = NSTemporaryDirectory() + "msrpgw-kamailio-msrp-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
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
        try Self.configuration(tlsPort: tlsPort, port: port, tlsConfig: directory + "/tls.cfg")
            .write(toFile: directory + "/msrp.cfg", atomically: true, encoding: .utf8)
        var user: [String] = []
        if getuid() == 0, let pw = getpwnam("kamailio") {
            for p in [directory, certificates.directory, certificates.keyPath, certificates.certPath, directory + "/tls.cfg", directory + "/msrp.cfg"] {
                chown(p, pw.pointee.pw_uid, pw.pointee.pw_gid)
            }
            user = ["-u", "kamailio", "-g", "kamailio"]
        }
        process = try ChildProcess(kamailio, ["-DD", "-E", "-f", directory + "/msrp.cfg", "-m", "32", "-M", "8", "-Y", directory] + user, name: "kamailio-msrp")
        // Ports are bound before the TLS key is loaded: wait a little past the open port.
        let deadline = ContinuousClock.now + .seconds(10)
        while !(tcpPortAccepts(tlsPort) && tcpPortAccepts(port)) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                process.stop()
                throw ChildProcess.ChildFailed(description: "kamailio (msrp) did not listen\n\(process.stderr.suffix(3000))")
            }
            try await Task.sleep(for: .milliseconds(30))
        }
        try await Task.sleep(for: .milliseconds(300))
    }

    var log: String { process.stderr + process.stdout }

    func stop() { process.stop() }

    static func configuration(tlsPort: Int, port: Int, tlsConfig: String) -> String {
        """
        #!KAMAILIO
        debug=2
        log_stderror=yes
        children=1
        tcp_children=2
        auto_aliases=no
        dns=no
        rev_dns=no
        enable_tls=yes
        tcp_accept_no_cl=yes
        listen=tls:127.0.0.1:\(tlsPort)
        listen=tcp:127.0.0.1:\(port)
        loadmodule "tls.so"
        loadmodule "sl.so"
        loadmodule "pv.so"
        loadmodule "auth.so"
        loadmodule "htable.so"
        loadmodule "msrp.so"
        modparam("tls", "config", "\(tlsConfig)")
        modparam("auth", "qop", "auth")
        modparam("htable", "htable", "msrp=>size=8;autoexpire=3600;")

        request_route { sl_send_reply("403", "No SIP here"); exit; }

        event_route[msrp:frame-in] {
          msrp_reply_flags("1");
          if (msrp_is_reply()) { msrp_relay(); exit; }
          if ($msrp(method) == "AUTH") {
            if ($msrp(nexthops) > 0) { msrp_relay(); exit; }
            if (!pv_www_authenticate("msrpgw.test", "secret", "0", "$msrp(method)")) {
              auth_get_www_authenticate("msrpgw.test", "1", "$var(wa)");
              msrp_reply("401", "Unauthorized", "$var(wa)"); exit;
            }
            $var(exp) = 3600;
            if ($hdr(Expires) != $null) $var(exp) = (int)$hdr(Expires);
            if ($var(exp) < 60) { msrp_reply("423", "Interval Out-of-Bounds", "Min-Expires: 60\\r\\n"); exit; }
            if ($var(exp) > 3600) { msrp_reply("423", "Interval Out-of-Bounds", "Max-Expires: 3600\\r\\n"); exit; }
            $var(sid) = "s" + $pp + "-" + $TV(Sn);
            $sht(msrp=>$var(sid)::a) = $msrp(srcaddr);
            $sht(msrp=>$var(sid)::s) = $msrp(srcsock);
            if ($proto == "tls") $var(sch) = "msrps"; else $var(sch) = "msrp";
            msrp_reply("200", "OK", "Use-Path: $var(sch)://$Ri:$Rp/$var(sid);tcp\\r\\nExpires: $var(exp)\\r\\n");
            exit;
          }
          if ($msrp(method) == "SEND" || $msrp(method) == "REPORT") {
            $var(sid) = $msrp(sessid);
            # Addressed to this relay alone, for no session it granted: 481.
            if ($sht(msrp=>$var(sid)::a) == $null && $msrp(nexthops) < 1) {
              if ($msrp(method) == "SEND") msrp_reply("481", "Session-does-not-exist");
              exit;
            }
            if ($msrp(method) == "SEND") msrp_reply("200", "OK");
            # Towards the AUTHed client: over the connection it AUTHed on. From it
            # (outbound), or for a hop this relay put in a From-Path (a REPORT on
            # its way back): by the next URI. (The msrp.cfg in ../shared/peers sent
            # the client's own traffic back to it and dropped such REPORTs.)
            if ($sht(msrp=>$var(sid)::a) != $null && $msrp(nexthops) < 2 && $msrp(srcaddr) != $sht(msrp=>$var(sid)::a)) {
              msrp_relay_flags("1");
              msrp_set_dst("$sht(msrp=>$var(sid)::a)", "$sht(msrp=>$var(sid)::s)");
            }
            msrp_relay(); exit;
          }
          msrp_reply("501", "Request-method-not-understood");
        }
        """
    }
}
