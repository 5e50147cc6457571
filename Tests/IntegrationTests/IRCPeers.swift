import Foundation

/// A throwaway ngircd (Debian `ngircd`: plain RFC 2812, no IRCv3 tags) on a
/// loopback port, configured as ../shared/peers/IRC.md says works here.
final class NgircdInstance: @unchecked Sendable {
    let port: Int
    let directory: String
    private let process: ChildProcess

    /// `port`: the port of a server this one replaces (a restart).
    init(port: Int? = nil) async throws {
        let ngircd = try Peers.require("ngircd", package: "ngircd")
        self.port = try port ?? freePort()
        directory = NSTemporaryDirectory() + "msrpgw-ngircd-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory + "/conf.d", withIntermediateDirectories: true)
        try """
            [Global]
             Name = irc3.test
             Info = msrpgw test
             Listen = 127.0.0.1
             Ports = \(self.port)
             MotdPhrase = "test"
             AdminInfo1 = t
             AdminInfo2 = t
             AdminEMail = t@localhost
             PidFile = \(directory)/ngircd.pid
            [Limits]
             MaxConnectionsIP = 0
             MaxJoins = 0
             MaxPenaltyTime = 0
             MaxNickLength = 30
            [Options]
             DNS = no
             Ident = no
             PAM = no
             IncludeDir = \(directory)/conf.d
            """.write(toFile: directory + "/ngircd.conf", atomically: true, encoding: .utf8)
        process = try ChildProcess(ngircd, ["-n", "-f", directory + "/ngircd.conf"], name: "ngircd")
        // Ready when the port accepts a connection.
        let deadline = ContinuousClock.now + .seconds(10)
        while !tcpPortAccepts(self.port) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                process.stop()
                throw ChildProcess.ChildFailed(description: "ngircd did not listen on \(port)\n\(process.stdout.suffix(2000))\(process.stderr.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(30))
        }
    }

    func stop() { process.stop() }
}

/// A throwaway InspIRCd (Debian `inspircd` 3) with TLS and the IRCv3 modules
/// (server-time, message-tags, echo-message, labeled-response, batch, msgid),
/// flood limits raised as ../shared/peers/IRC.md advises. It refuses to run as
/// root: as root it runs as Debian's `irc` user.
final class InspircdInstance: @unchecked Sendable {
    let port: Int
    let tlsPort: Int
    let directory: String
    let certificates: IntegrationCertificates
    private let process: ChildProcess

    init() async throws {
        let inspircd = try Peers.require("inspircd", package: "inspircd")
        (port, tlsPort) = (try freePort(), try freePort())
        certificates = try IntegrationCertificates.make()
        directory = NSTemporaryDirectory() + "msrpgw-inspircd-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try """
            <server name="irc.test" description="msrpgw test" network="TestNet" id="0AA">
            <admin name="t" nick="t" email="t@localhost">
            <bind address="127.0.0.1" port="\(port)" type="clients">
            <bind address="127.0.0.1" port="\(tlsPort)" type="clients" sslprofile="tls">
            <module name="ssl_gnutls">
            <sslprofile name="tls" provider="gnutls" certfile="\(directory)/cert.pem" keyfile="\(directory)/key.pem" dhfile="">
            <connect allow="*" resolvehostnames="no" fakelag="no" threshold="1000000" commandrate="1000000" localmax="1000" globalmax="1000" recvq="65536" softsendq="1048576" hardsendq="4194304">
            <performance netbuffersize="65000" somaxconn="1024">
            <log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="\(directory)/ircd.log">
            <module name="cap">
            <module name="ircv3">
            <module name="ircv3_servertime">
            <module name="ircv3_ctctags">
            <module name="ircv3_echomessage">
            <module name="ircv3_labeledresponse">
            <module name="ircv3_batch">
            <module name="ircv3_msgid">
            """.write(toFile: directory + "/inspircd.conf", atomically: true, encoding: .utf8)
        for f in ["cert.pem", "key.pem"] {
            try FileManager.default.copyItem(atPath: certificates.directory + "/" + f, toPath: directory + "/" + f)
        }
        var command = [inspircd, "--config", directory + "/inspircd.conf", "--nofork", "--nopid"]
        if getuid() == 0 {
            guard let pw = getpwnam("irc") else { throw Peers.PeerMissing(description: "no irc user to run inspircd as") }
            let (uid, gid) = (pw.pointee.pw_uid, pw.pointee.pw_gid)
            for p in [directory, directory + "/key.pem", directory + "/cert.pem", directory + "/inspircd.conf"] { chown(p, uid, gid) }
            command = ["/usr/bin/setpriv", "--reuid=irc", "--regid=irc", "--clear-groups"] + command
        }
        process = try ChildProcess(command[0], Array(command.dropFirst()), name: "inspircd")
        let deadline = ContinuousClock.now + .seconds(10)
        while !(tcpPortAccepts(port) && tcpPortAccepts(tlsPort)) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                process.stop()
                let log = (try? String(contentsOfFile: directory + "/ircd.log", encoding: .utf8)) ?? ""
                throw ChildProcess.ChildFailed(description: "inspircd did not listen\n\(process.stdout.suffix(2000))\(process.stderr.suffix(2000))\(log.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(30))
        }
    }

    func stop() { process.stop() }
}
