import Foundation
import TestPeers

/// Tests/Helpers/smtp_sink.py: aiosmtpd (Debian's python3-aiosmtpd) in a mode.
final class SMTPSinkProcess: @unchecked Sendable {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Helpers/smtp_sink.py").path
    static let parser = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Helpers/parse_mail.py").path
    /// Debian's Python: the one python3-aiosmtpd is installed for.
    static let python = "/usr/bin/python3"

    let port: Int
    let outbox: String
    let process: ChildProcess

    init(mode: String, certificates: TestCertificates? = nil) async throws {
        try await Peers.requireDebianPython(module: "aiosmtpd", package: "python3-aiosmtpd")
        port = try freePort()
        outbox = Scratch.path("mail")
        var args = [Self.script, mode, String(port), outbox]
        if let c = certificates { args += [c.certPath, c.keyPath] }
        process = try ChildProcess(Self.python, args, name: "smtp sink (\(mode))")
        try await process.waitFor("READY")
    }

    var mails: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: outbox)) ?? []).filter { $0.hasSuffix(".eml") }.sorted().map { outbox + "/" + $0 }
    }

    /// For a defer: see `ChildProcess.stop()`.
    func stop() { process.stop() }
    func stop() async { await process.stop() }

    /// A mail as Python's `email` package reads it.
    struct ParsedMail: Decodable {
        var from_name: String
        var from_address: String
        var to: String
        var reply_to: String?
        var subject: String
        var message_id: String
        var in_reply_to: String?
        var references: String?
        var content_type: String
        var text: String?
        var html: String?
        var attachments: [Attachment]
        var peer_to: String
        var peer_auth: String
        var peer_tls: String
        var defects: [String]
        var auto_submitted: String?
        struct Attachment: Decodable { var type: String; var filename: String?; var size: Int }
    }

    /// Awaited by polling (ChildProcess): a blocking read here held one of the
    /// two cooperative threads while Python ran, and starved parallel tests.
    static func parse(_ path: String) async throws -> ParsedMail {
        let p = try ChildProcess(python, [parser, path], name: "parse_mail")
        _ = try await p.wait()
        return try JSONDecoder().decode(ParsedMail.self, from: Data(p.stdout.utf8))
    }

    static func parse(_ paths: [String]) async throws -> [ParsedMail] {
        var out: [ParsedMail] = []
        for path in paths { out.append(try await parse(path)) }
        return out
    }
}

/// A throwaway Postfix instance on a loopback port (../shared/peers notes): a
/// virtual domain `example.org` delivered into a maildir, other domains held in
/// the queue. Needs root (CI has it) and Debian's postfix.
///
/// `relay` sends a domain on to another server (the gateway's reply domain to
/// its SMTP listener, as a site's MX would); `mailboxes` makes only those users
/// of example.org exist, and mail for the others is taken and then bounced by
/// Postfix itself (a DSN to the envelope sender), not refused at RCPT.
final class PostfixInstance: @unchecked Sendable {
    let directory: String
    let port: Int
    private let master: ChildProcess

    init(relay: (domain: String, port: Int)? = nil, mailboxes: [String]? = nil) async throws {
        let postfix = try Peers.require("postfix", package: "postfix")
        guard getuid() == 0 else { throw Peers.PeerMissing(description: "a throwaway Postfix needs root") }
        port = try freePort()
        directory = Scratch.path("postfix")
        let fm = FileManager.default
        for d in ["queue", "data", "vmail/inbox/new", "vmail/inbox/cur", "vmail/inbox/tmp"] {
            try fm.createDirectory(atPath: directory + "/" + d, withIntermediateDirectories: true)
        }
        guard let pw = getpwnam("postfix") else { throw Peers.PeerMissing(description: "no postfix user: apt-get install postfix") }
        let (uid, gid) = (pw.pointee.pw_uid, pw.pointee.pw_gid)
        for d in ["data", "vmail", "vmail/inbox", "vmail/inbox/new", "vmail/inbox/cur", "vmail/inbox/tmp"] { chown(directory + "/" + d, uid, gid) }
        try """
            compatibility_level = 3.6
            queue_directory = \(directory)/queue
            data_directory = \(directory)/data
            command_directory = /usr/sbin
            daemon_directory = /usr/lib/postfix/sbin
            shlib_directory = /usr/lib/postfix
            mail_owner = postfix
            setgid_group = postdrop
            maillog_file = \(directory)/maillog
            maillog_file_prefixes = \(NSTemporaryDirectory()), /tmp, /var
            inet_interfaces = 127.0.0.1
            inet_protocols = ipv4
            mynetworks = 127.0.0.0/8
            mydestination =
            myhostname = postfix.test
            alias_maps =
            alias_database =
            virtual_mailbox_domains = example.org
            virtual_mailbox_base = \(directory)/vmail
            virtual_mailbox_maps = \(mailboxes.map { "inline:{ " + $0.map { "\($0)@example.org=inbox/" }.joined(separator: ", ") + " }" } ?? "static:inbox/")
            smtpd_reject_unlisted_recipient = \(mailboxes == nil ? "yes" : "no")
            \(relay.map { "relay_domains = \($0.domain)\ntransport_maps = inline:{ \($0.domain)=toreply:[127.0.0.1]:\($0.port) }\nsmtp_host_lookup = native" } ?? "")
            virtual_uid_maps = static:\(uid)
            virtual_gid_maps = static:\(gid)
            defer_transports = smtp
            smtputf8_enable = yes
            """.write(toFile: directory + "/main.cf", atomically: true, encoding: .utf8)
        let services = [
            "127.0.0.1:\(port) inet n - n - - smtpd", "pickup unix n - n 60 1 pickup", "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr", "rewrite unix - - n - - trivial-rewrite", "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce", "trace unix - - n - 0 bounce", "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush", "proxymap unix - - n - - proxymap", "smtp unix - - n - - smtp",
            "showq unix n - n - - showq", "error unix - - n - - error", "retry unix - - n - - error",
            "discard unix - - n - - discard", "virtual unix - n n - - virtual", "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache", "postlog unix-dgram n - n - 1 postlogd", "toreply unix - - n - - smtp",
        ]
        try (services.joined(separator: "\n") + "\n").write(toFile: directory + "/master.cf", atomically: true, encoding: .utf8)
        let check = try ChildProcess(postfix, ["-c", directory, "check"], name: "postfix check")
        _ = try await check.wait()
        master = try ChildProcess("/usr/lib/postfix/sbin/master", ["-c", directory, "-d"], name: "postfix master")
        // Ready when the port answers.
        let (port, directory) = (self.port, self.directory)
        try await master.waitUntil("listen on \(port)", log: (try? String(contentsOfFile: directory + "/maillog", encoding: .utf8)) ?? "") {
            tcpPortAccepts(port)
        }
    }


    var delivered: [String] {
        let dir = directory + "/vmail/inbox/new"
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().map { dir + "/" + $0 }
    }

    var log: String { (try? String(contentsOfFile: directory + "/maillog", encoding: .utf8)) ?? "" }

    /// For a defer: see `ChildProcess.stop()`.
    func stop() { master.stop() }
    func stop() async { await master.stop() }
}
