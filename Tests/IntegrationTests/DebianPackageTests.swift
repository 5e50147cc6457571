import Foundation
import MSRPGatewayClient
import Testing
import TestPeers

#if canImport(Glibc)
    import Glibc
#endif

/// The .deb as an operator meets it, on this machine (as root): built from a
/// release build with the Swift runtime inside, checked by lintian, installed
/// with dpkg, its unit verified where it landed, its binary started the way
/// the unit starts it (the package's user, its configuration, a credential, a
/// notify socket), a message sent through it, its configuration kept across a
/// reinstall, and purged.
@Suite(.serialized, .enabled(if: getuid() == 0 || ProcessInfo.processInfo.environment["MSRPGW_REQUIRE_PEERS"] == "1",
                             "installs a package: needs root"))
struct DebianPackageTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test(.timeLimit(.minutes(40)))
    func buildLintInstallRunAndPurge() async throws {
        try #require(getuid() == 0, "dpkg -i needs root")
        for tool in ["dpkg-deb", "dpkg-shlibdeps", "lintian", "setpriv", "systemd-analyze"] {
            _ = try Peers.require(tool, package: tool == "dpkg-shlibdeps" ? "dpkg-dev" : tool == "setpriv" ? "util-linux" : tool == "systemd-analyze" ? "systemd" : tool)
        }
        _ = try Peers.require("python3", package: "python3")
        try await Peers.requirePythonModule("standardwebhooks", pip: "standardwebhooks")

        // Build (a release build: minutes when cold).
        let build = try ChildProcess("/bin/bash", [Self.root + "/deploy/debian/build-deb.sh"], name: "build-deb")
        #expect(try await build.wait(timeout: .seconds(2400)) == 0, "\(build.stderr.suffix(4000))")
        let deb = try #require(build.stdout.split(separator: "\n").last.map(String.init), "\(build.stdout)")

        let lintian = try ChildProcess("/usr/bin/lintian", ["--fail-on", "warning", "--tag-display-limit", "0", deb], name: "lintian")
        #expect(try await lintian.wait(timeout: .seconds(600)) == 0, "lintian: \(lintian.stdout) \(lintian.stderr)")

        // Install; whatever happens below, purge at the end.
        let install = try ChildProcess("/usr/bin/dpkg", ["-i", deb], name: "dpkg -i")
        #expect(try await install.wait(timeout: .seconds(300)) == 0, "\(install.stdout) \(install.stderr)")
        defer { Self.runToEnd("/usr/bin/dpkg", ["--purge", "msrpgw"]) }
        let user = try #require(getpwnam("msrpgw"), "the package made its user")
        let (uid, gid) = (user.pointee.pw_uid, user.pointee.pw_gid)
        var state = stat()
        #expect(stat("/var/lib/msrpgw", &state) == 0 && state.st_uid == uid, "the data directory belongs to msrpgw")
        #expect(FileManager.default.fileExists(atPath: "/etc/systemd/system/multi-user.target.wants/msrpgw.service"), "enabled")
        let verify = try ChildProcess("/usr/bin/systemd-analyze", ["verify", "/lib/systemd/system/msrpgw.service"], name: "systemd-analyze verify")
        #expect(try await verify.wait(timeout: .seconds(60)) == 0, "\(verify.stderr)")
        #expect(!verify.stderr.contains("msrpgw.service"), "\(verify.stderr)")

        // A credential as systemd hands it over (LoadCredential=), a receiver for the messages.
        let credentials = try Scratch.directory("credentials")
        try "package-test-token-0123456789\n".write(toFile: credentials + "/api-token", atomically: true, encoding: .utf8)
        for p in [credentials, credentials + "/api-token"] { chown(p, uid, gid) }
        chmod(credentials, 0o500)
        let sink = try await WebhookSinkProcess()
        defer { sink.stop() }
        let notify = try NotifySocket()
        chown(notify.path, uid, gid)
        let portsFile = "/var/lib/msrpgw/ports.json"
        // As the unit runs it: its user, no new privileges, its configuration; ports and a route for this test.
        let daemon = try ChildProcess("/usr/bin/setpriv", [
            "--reuid=msrpgw", "--regid=msrpgw", "--init-groups", "--no-new-privs", "--",
            "/usr/bin/msrpgw", "serve", "--config", "/etc/msrpgw/msrpgw.toml", "--ports-file", portsFile,
        ], name: "installed msrpgw", environment: [
            "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "2000000", "CREDENTIALS_DIRECTORY": credentials,
            "MSRPGW_API_TOKEN_FILE": "api-token", "MSRPGW_MSRP_PORT": "0", "MSRPGW_API_PORT": "0",
            "MSRPGW_MSRP_CONNECT_ALLOW": #"["127.0.0.0/8"]"#,
            "MSRPGW_ROUTES": #"{ "sip:ops@gw.example" = ["webhook:ops"] }"#,
            "MSRPGW_WEBHOOKS_OPS_URL": sink.url("/ok"), "MSRPGW_WEBHOOKS_OPS_SECRETS": WebhookSinkProcess.secret,
        ])
        defer { daemon.stop() }
        #expect(await until(.seconds(30)) { notify.messages.contains { $0.hasPrefix("READY=1") } }, "\(daemon.stderr)")
        let ports = try JSONDecoder().decode(GatewayProcess.Ports.self, from: Data(contentsOf: URL(fileURLWithPath: portsFile)))
        let clients = try TestClients()
        let alice = GatewayClient(name: "Alice", address: "sip:alice@example.com", endpoint: clients.endpoint, http: clients.http,
                                  api: "http://127.0.0.1:\(ports.api)", token: "package-test-token-0123456789")
        do {
            try await alice.open()
            #expect(try await alice.send("through the installed package", to: "sip:ops@gw.example", messageID: "deb-1") == .accepted)
        } catch {
            Issue.record("\(error)\n\(daemon.stderr)")
        }
        #expect(await until(.seconds(15)) { sink.records("/ok").contains { $0.valid && $0.payload?.data.text == "through the installed package" } })
        #expect(await until(.seconds(15)) { alice.allReports.contains { $0.headers.status?.code == 200 } })
        await clients.shutdown()
        daemon.signal(SIGTERM)
        #expect(try await daemon.wait(timeout: .seconds(30)) == 0, "\(daemon.stderr)")
        #expect(notify.messages.contains { $0.hasPrefix("STOPPING=1") })
        #expect(FileManager.default.fileExists(atPath: "/var/lib/msrpgw/queue.sqlite"))

        // A changed configuration survives a reinstall (an upgrade's path through dpkg).
        let edited = try String(contentsOfFile: "/etc/msrpgw/msrpgw.toml", encoding: .utf8) + "\n# edited by the operator\n"
        try edited.write(toFile: "/etc/msrpgw/msrpgw.toml", atomically: false, encoding: .utf8)
        let again = try ChildProcess("/usr/bin/dpkg", ["-i", "--force-confold", deb], name: "dpkg -i again")
        #expect(try await again.wait(timeout: .seconds(300)) == 0, "\(again.stdout) \(again.stderr)")
        #expect(try String(contentsOfFile: "/etc/msrpgw/msrpgw.toml", encoding: .utf8).hasSuffix("# edited by the operator\n"))

        let purge = try ChildProcess("/usr/bin/dpkg", ["--purge", "msrpgw"], name: "dpkg --purge")
        #expect(try await purge.wait(timeout: .seconds(300)) == 0, "\(purge.stdout) \(purge.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "/usr/bin/msrpgw"))
        #expect(!FileManager.default.fileExists(atPath: "/etc/msrpgw/msrpgw.toml"))
        #expect(!FileManager.default.fileExists(atPath: "/etc/systemd/system/multi-user.target.wants/msrpgw.service"))
        try? FileManager.default.removeItem(atPath: "/var/lib/msrpgw")
    }

    /// Runs a command to its end from a place that cannot await (a defer).
    static func runToEnd(_ executable: String, _ arguments: [String]) {
        guard let p = try? ChildProcess(executable, arguments, name: executable) else { return }
        let deadline = ContinuousClock.now + .seconds(300)
        while p.isRunning, ContinuousClock.now < deadline { usleep(50_000) }
    }
}
