import Admission
import Foundation
import NIOCore
import SMTPServer
import SMTPWire

/// `[smtp.inbound]`: the SMTP listener replies and bounces come back to.
struct SMTPInboundSettings: Sendable {
    var listen = "127.0.0.1"
    var port = 2525
    /// The reply domain: the part after `@` of every reply and bounce address.
    var addressing: ReplyAddressing
    /// The name in the greeting and Received fields (default: the reply domain).
    var hostname: String
    var tlsCertificate: String?
    var tlsKey: String?
    var requireTLS = false
    var limits = SMTPServerLimits()
    var connectionLimits = ConnectionLimits(perListener: 256, perSource: 32)
    var commandTimeout: Duration = .seconds(300)

    static let keys = ["listen", "port", "domain", "hostname", "secrets", "secrets_file", "token_ttl", "tls_certificate", "tls_key",
                       "require_tls", "max_message_size", "max_recipients", "max_connections", "max_connections_per_source", "command_timeout"]

    /// Reads `[smtp.inbound]`; nil when the table is absent. `retention` bounds
    /// the tokens' life: a reply must find the event it answers.
    static func read(_ tree: ConfigTree, retention: Duration) throws(ConfigError) -> SMTPInboundSettings? {
        guard tree[["smtp", "inbound"]] != nil else { return nil }
        var r = try ConfigReader(tree, section: "smtp.inbound")
        guard let domain = try r.string("domain")?.lowercased(), MailAddress(address: "x@" + domain).isValid, !domain.contains("@") else {
            throw ConfigError("smtp.inbound.domain: the reply domain is required (like reply.example.com: its MX, or a relay, sends to this listener)")
        }
        guard let secrets = try r.secrets("secrets"), !secrets.isEmpty else {
            throw ConfigError("smtp.inbound.secrets: at least one secret to sign reply addresses with (the first signs, all verify)")
        }
        let keys: MailTokenKeys
        do { keys = try MailTokenKeys(secrets: secrets) } catch { throw ConfigError("smtp.inbound.secrets: \(error)") }
        let ttl = try r.duration("token_ttl", default: .seconds(7 * 86400))
        guard ttl >= .seconds(60) else { throw ConfigError("smtp.inbound.token_ttl: at least 1m") }
        guard ttl <= retention else {
            throw ConfigError("smtp.inbound.token_ttl: \(Int(ttl.seconds))s outlives queue.retention \(Int(retention.seconds))s: a reply would find its conversation purged")
        }
        var s = SMTPInboundSettings(addressing: ReplyAddressing(domain: domain, keys: keys, lifetime: ttl.seconds), hostname: domain)
        s.listen = try r.string("listen", default: s.listen)
        s.port = try r.int("port", default: s.port, in: 0...65535)
        s.hostname = try r.string("hostname", default: domain)
        s.tlsCertificate = try r.string("tls_certificate").flatMap { $0.isEmpty ? nil : $0 }
        s.tlsKey = try r.string("tls_key").flatMap { $0.isEmpty ? nil : $0 }
        guard (s.tlsCertificate == nil) == (s.tlsKey == nil) else { throw ConfigError("smtp.inbound: tls_certificate and tls_key go together") }
        s.requireTLS = try r.bool("require_tls", default: false)
        if s.requireTLS, s.tlsCertificate == nil { throw ConfigError("smtp.inbound.require_tls: needs tls_certificate and tls_key") }
        s.limits.maxMessageSize = try r.int("max_message_size", default: s.limits.maxMessageSize, in: 1024...(1 << 30))
        s.limits.maxRecipients = try r.int("max_recipients", default: s.limits.maxRecipients, in: 1...10_000)
        s.connectionLimits = try r.connectionLimits(default: s.connectionLimits)
        s.commandTimeout = try r.timeout("command_timeout", default: s.commandTimeout)
        try r.finish()
        return s
    }
}
