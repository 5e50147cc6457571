import Foundation
import IRCClient
import IRCWire
import Logging
import TestPeers

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
        directory = Scratch.path("ngircd")
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
        let port = self.port
        try await process.waitUntil("listen on \(port)") { tcpPortAccepts(port) }
    }

    /// For a defer: see `ChildProcess.stop()`.
    func stop() { process.stop() }
    func stop() async { await process.stop() }
}

/// A throwaway InspIRCd (Debian `inspircd` 3) with TLS and the IRCv3 modules
/// (server-time, message-tags, echo-message, labeled-response, batch, msgid),
/// flood limits raised as ../shared/peers/IRC.md advises unless `flood` gives
/// the `<connect>` limits. With `services`, a link port and the SASL modules for
/// Atheme (`AthemeInstance`). It refuses to run as root: as root it runs as
/// Debian's `irc` user.
final class InspircdInstance: @unchecked Sendable {
    let port: Int
    let tlsPort: Int
    /// The server-to-server port services link to (with `services`).
    let linkPort: Int
    let directory: String
    let certificates: TestCertificates
    private let process: ChildProcess

    /// The `<connect>` limits of a server that disconnects flooders ("Excess
    /// Flood") instead of lagging them: about 6 lines a second pass, 8 do not.
    static let floodLimits = #"fakelag="no" threshold="10" commandrate="10000""#

    init(flood: String? = nil, services: Bool = false) async throws {
        let inspircd = try Peers.require("inspircd", package: "inspircd")
        (port, tlsPort, linkPort) = (try freePort(), try freePort(), try freePort())
        let limits = flood ?? #"fakelag="no" threshold="1000000" commandrate="1000000""#
        certificates = try await TestCertificates.make()
        directory = try Scratch.directory("inspircd")
        try ("""
            <server name="irc.test" description="msrpgw test" network="TestNet" id="0AA">
            <admin name="t" nick="t" email="t@localhost">
            <bind address="127.0.0.1" port="\(port)" type="clients">
            <bind address="127.0.0.1" port="\(tlsPort)" type="clients" sslprofile="tls">
            <module name="ssl_gnutls">
            <sslprofile name="tls" provider="gnutls" certfile="\(directory)/cert.pem" keyfile="\(directory)/key.pem" dhfile="">
            <connect allow="*" resolvehostnames="no" \(limits) localmax="1000" globalmax="1000" recvq="65536" softsendq="1048576" hardsendq="4194304">
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
            <module name="ircv3_accounttag">
            """ + (services ? """

            <bind address="127.0.0.1" port="\(linkPort)" type="servers">
            <module name="sasl">
            <sasl target="services.test" requiressl="no">
            <module name="services_account">
            <module name="chghost">
            <module name="cban">
            <module name="svshold">
            <module name="spanningtree">
            <link name="services.test" ipaddr="127.0.0.1" port="\(linkPort)" allowmask="127.0.0.0/8" sendpass="linkpw" recvpass="linkpw">
            <uline server="services.test" silent="yes">
            """ : "")).write(toFile: directory + "/inspircd.conf", atomically: true, encoding: .utf8)
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
        let (port, tlsPort, directory) = (self.port, self.tlsPort, self.directory)
        try await process.waitUntil("listen", log: (try? String(contentsOfFile: directory + "/ircd.log", encoding: .utf8)) ?? "") {
            tcpPortAccepts(port) && tcpPortAccepts(tlsPort)
        }
        // TLS is ready when a handshake completes (a client that came earlier
        // once got plain text: WRONG_VERSION_NUMBER).
        let certificates = self.certificates
        try await process.waitUntil("complete a TLS handshake") { await certificates.handshakes(port: tlsPort) }
    }

    /// For a defer: see `ChildProcess.stop()`.
    func stop() { process.stop() }
    func stop() async { await process.stop() }
}

/// Atheme (Debian `atheme-services`) linked to an `InspircdInstance(services:
/// true)` for SASL PLAIN, as ../shared/peers/IRC.md describes (but with spaces
/// around `=`: Atheme 7.2 reads `host="x"` as a key named `host="x"`); accounts
/// are registered through NickServ by `register`.
final class AthemeInstance: @unchecked Sendable {
    let directory: String
    private let process: ChildProcess

    init(linkedTo ircd: InspircdInstance) async throws {
        let atheme = try Peers.require("atheme-services", package: "atheme-services")
        directory = Scratch.path("atheme")
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        try """
            loadmodule "modules/protocol/inspircd"; loadmodule "modules/backend/opensex"; loadmodule "modules/crypto/pbkdf2v2";
            loadmodule "modules/nickserv/main"; loadmodule "modules/nickserv/register"; loadmodule "modules/nickserv/identify";
            loadmodule "modules/saslserv/main"; loadmodule "modules/saslserv/plain";
            serverinfo { name = "services.test"; desc = "x"; numeric = "00A"; recontime = 2; netname = "TestNet"; hidehostsuffix = "users.test";
              adminname = "t"; adminemail = "t@localhost"; registeremail = "noreply@localhost"; auth = none; loglevel = {error;info;};
              maxlogins = 5; maxusers = 1000; mdlimit = 30; emaillimit = 10; emailtime = 300; casemapping = rfc1459; };
            uplink "irc.test" { host = "127.0.0.1"; port = \(ircd.linkPort); send_password = "linkpw"; receive_password = "linkpw"; };
            nickserv { nick = "NickServ"; user = "NickServ"; host = "services.test"; real = "x"; };
            saslserv { nick = "SaslServ"; user = "SaslServ"; host = "services.test"; real = "x"; };
            general { flood_msgs = 0; flood_time = 10; ratelimit_uses = 0; ratelimit_period = 60; commit_interval = 5; uplink_sendq_limit = 1048576; language = "en"; };
            """.write(toFile: directory + "/atheme.conf", atomically: true, encoding: .utf8)
        var command = [atheme, "-n", "-c", directory + "/atheme.conf", "-D", directory + "/data", "-l", directory + "/atheme.log", "-p", directory + "/atheme.pid"]
        if getuid() == 0 {
            guard let pw = getpwnam("irc") else { throw Peers.PeerMissing(description: "no irc user to run atheme as") }
            for p in [directory, directory + "/data", directory + "/atheme.conf"] { chown(p, pw.pointee.pw_uid, pw.pointee.pw_gid) }
            command = ["/usr/bin/setpriv", "--reuid=irc", "--regid=irc", "--clear-groups"] + command
        }
        process = try ChildProcess(command[0], Array(command.dropFirst()), name: "atheme")
    }

    /// Registers `account` with `password` through NickServ (retried until the
    /// services have linked, within 20 s).
    func register(account: String, password: String, on ircd: InspircdInstance) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let c = try await IRCConnection.connect(
                IRCClientConfiguration(host: "127.0.0.1", port: ircd.port, tls: false, nick: account, linesPerSecond: 0),
                group: IRCConnectionTests.group, logger: Logger(label: "test.atheme"))
            let inbox = IRCConnectionTests.Inbox(c)
            try await c.send(IRCMessage(command: "PRIVMSG", params: ["NickServ", "REGISTER \(password) \(account)@example.com"])).get()
            let registered = await until(.seconds(3)) {
                inbox.messages.contains { $0.command == "900" || ($0.command == "NOTICE" && $0.params.last?.contains("registered") == true) }
            }
            await c.quit()
            if registered { return }
            try await Task.sleep(for: .milliseconds(500))
        }
        let log = (try? String(contentsOfFile: directory + "/atheme.log", encoding: .utf8)) ?? ""
        throw ChildProcess.ChildFailed(description: "could not register \(account) with NickServ\n\(process.stderr.suffix(1000))\(log.suffix(2000))")
    }

    /// For a defer: see `ChildProcess.stop()`.
    func stop() { process.stop() }
    func stop() async { await process.stop() }
}

/// Someone on a test IRC server, in plain text with no flood control unless
/// told (`tlsCA`: over TLS trusting that CA; `burst`/`linesPerSecond`: paced):
/// the connection, what it receives, and the channel it joined (if any).
func ircUser(
    port: Int, nick: String, joining channel: String? = nil, tlsCA: String? = nil,
    capabilities: [String] = IRCClientConfiguration.defaultCapabilities, burst: Int = 5, linesPerSecond: Double = 0
) async throws -> (IRCConnection, IRCConnectionTests.Inbox) {
    let c = try await IRCConnection.connect(
        IRCClientConfiguration(host: "127.0.0.1", port: port, tls: tlsCA != nil, caFile: tlsCA, nick: nick, capabilities: capabilities,
                               burst: burst, linesPerSecond: linesPerSecond),
        group: IRCConnectionTests.group, logger: Logger(label: "test.irc.\(nick)"))
    let inbox = IRCConnectionTests.Inbox(c)
    if let channel { try await c.send(IRCMessage(command: "JOIN", params: [channel])).get() }
    return (c, inbox)
}

/// The `[irc.test]` network of a test gateway whose channel `#room` is bridged
/// to the chat room `room` (plain text, no flood control), the room, and its route
/// to the channel; `extra` goes into the network's section.
func bridgedRoomConfiguration(port: Int, room: String, extra: String = "") -> String {
    """
    [irc.test]
    host = "127.0.0.1"
    port = \(port)
    tls = false
    nick = "msrpgw"
    channels = ["#room"]
    lines_per_second = 0
    bridges = { "#room" = "\(room)" }
    \(extra)
    [rooms]
    "\(room)" = { nicknames = true }
    [routes]
    "\(room)" = ["irc://test/room"]
    """
}
