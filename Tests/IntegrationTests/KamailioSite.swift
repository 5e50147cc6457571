import Foundation
import TestPeers

/// deploy/kamailio/kamailio.cfg run as shipped: the test writes only what a
/// site writes, `msrpgw-local.cfg` (listen lines, roles, defines) and the
/// users table, in a directory Kamailio is started in (it looks there first).
struct KamailioSite {
    static let configuration = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy/kamailio/kamailio.cfg").path

    let directory: String

    /// - Parameter local: the site's settings (`#!define`s and `listen=` lines);
    ///   USERS_DB is added, pointing at `users`.
    init(directory: String, local: String, users: [String: String]) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory + "/db", withIntermediateDirectories: true)
        try (local + "\n#!define USERS_DB \"text://\(directory)/db\"\n")
            .write(toFile: directory + "/msrpgw-local.cfg", atomically: true, encoding: .utf8)
        try "table_name(str) table_version(int)\nmsrpgw_users:1\n".write(toFile: directory + "/db/version", atomically: true, encoding: .utf8)
        try (["key_name(str) key_type(int) value_type(int) key_value(str) expires(int)"] + users.sorted { $0.key < $1.key }.map { "\($0.key):0:0:\($0.value):0" })
            .joined(separator: "\n").appending("\n").write(toFile: directory + "/db/msrpgw_users", atomically: true, encoding: .utf8)
    }

    /// Starts Kamailio in the site's directory; as root it drops to the
    /// kamailio user (as the Debian package runs it), which must read `readable`.
    func start(name: String, readable: [String] = []) throws -> ChildProcess {
        let kamailio = try Peers.require("kamailio", package: "kamailio")
        var user = ""
        if getuid() == 0, let pw = getpwnam("kamailio") {
            for p in [directory, directory + "/db", directory + "/db/version", directory + "/db/msrpgw_users", directory + "/msrpgw-local.cfg"] + readable {
                chown(p, pw.pointee.pw_uid, pw.pointee.pw_gid)
            }
            user = " -u kamailio -g kamailio"
        }
        // exec: the child's pid is Kamailio's.
        return try ChildProcess("/bin/sh", ["-c", "cd '\(directory)' && exec \(kamailio) -DD -E -f '\(Self.configuration)' -m 32 -M 8 -Y '\(directory)'\(user)"],
                                name: name)
    }
}
