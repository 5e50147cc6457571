import Foundation
import TestPeers

/// A throwaway Prosody (Debian `prosody` 0.12) on loopback ports with an
/// external component, configured as ../shared/peers/SMTP-XMPP-BROWSER.md says
/// works here: c2s without TLS (plain auth allowed: loopback only), offline
/// storage, users registered with prosodyctl. `restart()` keeps its ports and data.
final class ProsodyInstance: @unchecked Sendable {
    let c2sPort: Int
    let componentPort: Int
    let directory: String
    let domain = "localhost"
    let component = "msrp.localhost"
    let secret: String
    private var process: ChildProcess?
    private let prosody: String
    private var config: String { directory + "/prosody.cfg.lua" }

    /// With `muc`, a MUC service at `conference.localhost` (rooms unlocked at creation).
    init(secret: String = "compsecret", users: [(String, String)] = [("bob", "bobpw")], muc: Bool = false) async throws {
        prosody = try Peers.require("prosody", package: "prosody")
        self.secret = secret
        (c2sPort, componentPort) = (try freePort(), try freePort())
        directory = Scratch.path("prosody")
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        try """
            run_as_root = true
            data_path = "\(directory)/data"
            pidfile = "\(directory)/prosody.pid"
            log = { { levels = { min = "info" }, to = "console" } }
            interfaces = { "127.0.0.1" }
            c2s_ports = { \(c2sPort) }
            component_ports = { \(componentPort) }
            component_interface = "127.0.0.1"
            s2s_ports = { }; http_ports = { }; https_ports = { }; c2s_direct_tls_ports = { }
            modules_enabled = { "roster", "saslauth", "disco", "ping", "posix", "offline" }
            modules_disabled = { "s2s", "tls" }
            c2s_require_encryption = false
            allow_unencrypted_plain_auth = true
            authentication = "internal_plain"
            limits = { c2s = { rate = "100mb/s" }, component = { rate = "100mb/s" } }
            VirtualHost "\(domain)"
            Component "\(component)"
                component_secret = "\(secret)"
            \(muc ? "Component \"conference.\(domain)\" \"muc\"\n    muc_room_locking = false" : "")
            """.write(toFile: config, atomically: true, encoding: .utf8)
        // Waited for without blocking a thread of the test's pool (other tests' timers run on it).
        let prosodyctl = try Peers.require("prosodyctl", package: "prosody")
        for (user, password) in users {
            _ = try await ChildProcess(prosodyctl, ["--config", config, "register", user, domain, password], name: "prosodyctl").wait()
        }
        try await start()
    }

    func start() async throws {
        let p = try ChildProcess(prosody, ["-F", "--config", config], name: "prosody")
        process = p
        let (c2s, comp) = (c2sPort, componentPort)
        try await p.waitUntil("prosody listens on \(c2s) and \(comp)", timeout: .seconds(15), log: p.stdout + p.stderr) {
            tcpPortAccepts(c2s) && tcpPortAccepts(comp)
        }
    }

    /// SIGTERM, and wait until it has gone (its ports are free again).
    func stop() async {
        guard let p = process else { return }
        await p.stop()
        process = nil
    }

    /// For a defer: SIGTERM; see `ChildProcess.stop()`.
    func stop() {
        process?.stop()
        process = nil
    }

    var log: String { (process?.stdout ?? "") + (process?.stderr ?? "") }

    func restart() async throws {
        await stop()
        try await start()
    }
}

/// An XMPP user: slixmpp (Debian `python3-slixmpp`) logged in to a Prosody,
/// driven by Tests/Helpers/xmpp_user.py. What it sees is read from its JSON lines.
final class XMPPUser: @unchecked Sendable {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Helpers/xmpp_user.py").path

    struct Event: Decodable, Equatable {
        var event: String
        var from: String?
        var id: String?
        var type: String?
        var body: String?
        var receipt_request: Bool?
        var markable: Bool?
        var delay: String?
        var origin_id: String?
        var condition: String?
        var xml: String?
    }

    let jid: String
    let process: ChildProcess
    private let commands: String
    private var sequence = 0

    convenience init(_ user: String, password: String, prosody: ProsodyInstance, receipts: Bool = true) async throws {
        try await self.init(user, password: password, domain: prosody.domain, c2sPort: prosody.c2sPort, receipts: receipts)
    }

    init(_ user: String, password: String, domain: String, c2sPort: Int, receipts: Bool = true) async throws {
        let python = "/usr/bin/python3"  // Debian's, where python3-slixmpp is
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw Peers.PeerMissing(description: "/usr/bin/python3 is missing: apt-get install python3-slixmpp")
        }
        try await Peers.requirePythonModule("slixmpp", pip: "slixmpp (apt-get install python3-slixmpp)", python: python)
        jid = "\(user)@\(domain)"
        commands = try Scratch.directory("xmpp-cmd")
        process = try ChildProcess(python, [Self.script, jid + "/test", password, String(c2sPort), commands] + (receipts ? [] : ["--no-receipts"]),
                                   name: "xmpp user \(user)")
        try await process.waitFor(#""event": "ready""#, timeout: .seconds(20))
    }

    var events: [Event] {
        process.stdout.split(separator: "\n").compactMap { try? JSONDecoder().decode(Event.self, from: Data($0.utf8)) }
    }

    var messages: [Event] { events.filter { $0.event == "message" } }

    func command(_ json: [String: Any]) throws {
        sequence += 1
        let data = try JSONSerialization.data(withJSONObject: json)
        let name = String(format: "%08d.json", sequence)
        // Written aside, then renamed: the script never reads half a file.
        try data.write(to: URL(fileURLWithPath: commands + "/." + name))
        try FileManager.default.moveItem(atPath: commands + "/." + name, toPath: commands + "/" + name)
    }

    func send(_ body: String, to: String, id: String, receipt: Bool = true, markable: Bool = false, delay: String? = nil) throws {
        var c: [String: Any] = ["cmd": "send", "to": to, "body": body, "id": id, "receipt": receipt, "markable": markable]
        if let delay { c["delay"] = delay }
        try command(c)
    }

    func join(_ room: String, as nick: String) throws { try command(["cmd": "join", "room": room, "nick": nick]) }
    func leave(_ room: String, as nick: String) throws { try command(["cmd": "leave", "room": room, "nick": nick]) }
    func groupchat(_ body: String, in room: String, id: String) throws { try command(["cmd": "groupchat", "room": room, "body": body, "id": id]) }

    func marker(displayed id: String, to: String) throws { try command(["cmd": "marker", "to": to, "id": id]) }

    func query(_ xml: String, to: String) throws {
        try command(["cmd": "iq", "to": to, "xml": xml])
    }

    /// For a defer: see `ChildProcess.stop()`.
    func stop() { process.stop() }
    func stop() async { await process.stop() }
}

/// A throwaway ejabberd (Debian `ejabberd` 23.01) with the same layout as
/// `ProsodyInstance`: c2s without TLS and an external component, its own
/// Erlang node name, config and spool in a temporary directory (as root,
/// ejabberdctl runs it as the `ejabberd` user, who must own that directory).
final class EjabberdInstance: @unchecked Sendable {
    let c2sPort: Int
    let componentPort: Int
    let directory: String
    let domain = "localhost"
    let component = "msrp.localhost"
    let secret = "compsecret"
    private let node: String
    private let ejabberdctl: String
    private var process: ChildProcess?

    init(users: [(String, String)] = [("bob", "bobpw")]) async throws {
        ejabberdctl = try Peers.require("ejabberdctl", package: "ejabberd")
        (c2sPort, componentPort) = (try freePort(), try freePort())
        directory = Scratch.path("ejabberd")
        node = "msrpgw" + String(UInt32.random(in: 0...UInt32.max), radix: 36) + "@localhost"
        for d in ["spool", "logs", "modules.d"] {
            try FileManager.default.createDirectory(atPath: directory + "/" + d, withIntermediateDirectories: true)
        }
        try """
            hosts: ["\(domain)"]
            loglevel: info
            certfiles: []
            listen:
              - {port: \(c2sPort), ip: "127.0.0.1", module: ejabberd_c2s, starttls: false}
              - {port: \(componentPort), ip: "127.0.0.1", module: ejabberd_service, hosts: {"\(component)": {password: "\(secret)"}}}
            auth_method: internal
            auth_password_format: plain
            s2s_access: none
            acl: {local: {user_regexp: ""}}
            access_rules: {local: {allow: local}, c2s: {allow: all}}
            shaper_rules: {}
            modules: {mod_disco: {}, mod_ping: {}, mod_roster: {}, mod_offline: {}}
            """.write(toFile: directory + "/ejabberd.yml", atomically: true, encoding: .utf8)
        try """
            ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
            EJABBERD_PID_PATH=\(directory)/ejabberd.pid
            EJABBERD_CONFIG_PATH=\(directory)/ejabberd.yml
            CONTRIB_MODULES_CONF_DIR=\(directory)/modules.d
            """.write(toFile: directory + "/ejabberdctl.cfg", atomically: true, encoding: .utf8)
        try? FileManager.default.copyItem(atPath: "/etc/ejabberd/inetrc", toPath: directory + "/inetrc")
        if getuid() == 0 {
            _ = try await ChildProcess("/bin/chown", ["-R", "ejabberd:ejabberd", directory], name: "chown").wait()
        }
        let p = try ChildProcess(ejabberdctl, options + ["foreground"], name: "ejabberd")
        process = p
        let (c2s, comp) = (c2sPort, componentPort)
        try await p.waitUntil("ejabberd listens on \(c2s) and \(comp)", timeout: .seconds(30), log: p.stdout + p.stderr) {
            tcpPortAccepts(c2s) && tcpPortAccepts(comp)
        }
        for (user, password) in users { _ = try await ChildProcess(ejabberdctl, options + ["register", user, domain, password], name: "ejabberdctl").wait() }
    }

    private var options: [String] {
        ["--config-dir", directory, "--ctl-config", directory + "/ejabberdctl.cfg", "--spool", directory + "/spool",
         "--logs", directory + "/logs", "--node", node]
    }

    /// For a defer: `ejabberdctl stop` (the node is behind su and sh) started,
    /// not waited for, and SIGTERM to the process; see `ChildProcess.stop()`.
    func stop() {
        guard let p = process else { return }
        (try? ChildProcess(ejabberdctl, options + ["stop"], name: "ejabberdctl stop"))?.reapInBackground(killAfter: .seconds(60))
        p.stop()
        process = nil
    }
}
