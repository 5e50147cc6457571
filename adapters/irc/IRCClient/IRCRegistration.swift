import Foundation
import IRCWire

/// The registration dialogue (RFC 2812 §3.1 with IRCv3 capability negotiation
/// 302 and SASL), as a pure state machine: lines in, lines out. The connection
/// feeds it every message until it says registered (001) or failed.
public struct IRCRegistration: Sendable {
    public enum Outcome: Sendable, Hashable {
        /// Still talking.
        case pending
        /// 001 arrived: the nick we have, and the capabilities the server enabled.
        case registered(nick: String, capabilities: Set<String>)
        case failed(String)
    }

    private let configuration: IRCClientConfiguration
    private(set) var nick: String
    private var offered: [String: String] = [:]
    private(set) var enabled: Set<String> = []
    private var capDone = false
    private var nickAttempt = 0
    public private(set) var outcome: Outcome = .pending

    public init(configuration: IRCClientConfiguration) {
        self.configuration = configuration
        self.nick = configuration.nick
    }

    /// What to send first.
    public func start() -> [IRCMessage] {
        var out = [IRCMessage(command: "CAP", params: ["LS", "302"])]
        if let password = configuration.password { out.append(IRCMessage(command: "PASS", params: [password])) }
        out.append(IRCMessage(command: "NICK", params: [nick]))
        out.append(IRCMessage(command: "USER", params: [configuration.user, "0", "*", configuration.realName]))
        return out
    }

    /// Feeds one message from the server; returns what to answer.
    public mutating func receive(_ m: IRCMessage) -> [IRCMessage] {
        guard outcome == .pending else { return [] }
        switch m.command.uppercased() {
        case "PING":
            return [IRCMessage(command: "PONG", params: m.params)]
        case "CAP":
            return capability(m)
        case "AUTHENTICATE":
            return authenticate(m)
        case "001":
            if let n = m.params.first { nick = n }
            outcome = .registered(nick: nick, capabilities: enabled)
            return capDone ? [] : [IRCMessage(command: "CAP", params: ["END"])]
        case "421" where m.params.dropFirst().first?.uppercased() == "CAP":
            capDone = true  // a server without capability negotiation: plain RFC 2812
            return []
        case "432", "433", "436", "437":
            // Nick refused or taken: the next fallback (nick_, nick__, then nick1, nick2...).
            nickAttempt += 1
            guard nickAttempt <= 9 else {
                outcome = .failed("no nick accepted after \(nickAttempt) tries (\(m.command))")
                return []
            }
            let base = configuration.nick
            nick = nickAttempt <= 2 ? base + String(repeating: "_", count: nickAttempt) : base + String(nickAttempt - 2)
            return [IRCMessage(command: "NICK", params: [nick])]
        case "902", "904", "905", "906", "908":
            outcome = .failed("SASL failed: \(m.command) \(m.params.last ?? "")")
            return [IRCMessage(command: "CAP", params: ["END"])]
        case "903":
            capDone = true
            return [IRCMessage(command: "CAP", params: ["END"])]
        case "ERROR":
            outcome = .failed("server closed the registration: \(m.params.last ?? "")")
            return []
        case "464":
            outcome = .failed("server password refused")
            return []
        default:
            return []
        }
    }

    private mutating func capability(_ m: IRCMessage) -> [IRCMessage] {
        guard m.params.count >= 3 else { return [] }
        let sub = m.params[1].uppercased()
        switch sub {
        case "LS":
            // "CAP * LS * :a b" is one of several lines; the last has no "*".
            let more = m.params.count >= 4 && m.params[2] == "*"
            for token in (m.params.last ?? "").split(separator: " ") {
                let parts = token.split(separator: "=", maxSplits: 1)
                offered[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            if more { return [] }
            var wanted = configuration.capabilities.filter { offered[$0] != nil }
            if wantsSASL, let mechanisms = offered["sasl"] {
                let mechanism = saslMechanism
                if mechanisms.isEmpty || mechanisms.split(separator: ",").contains(Substring(mechanism)) {
                    wanted.append("sasl")
                } else {
                    outcome = .failed("the server's SASL offers \(mechanisms), not \(mechanism)")
                    return []
                }
            } else if wantsSASL {
                outcome = .failed("SASL is configured but the server does not offer it")
                return []
            }
            if wanted.isEmpty {
                capDone = true
                return [IRCMessage(command: "CAP", params: ["END"])]
            }
            return [IRCMessage(command: "CAP", params: ["REQ", wanted.joined(separator: " ")])]
        case "ACK":
            for c in (m.params.last ?? "").split(separator: " ") {
                if c.hasPrefix("-") { enabled.remove(String(c.dropFirst())) } else { enabled.insert(String(c)) }
            }
            if enabled.contains("sasl"), wantsSASL {
                return [IRCMessage(command: "AUTHENTICATE", params: [saslMechanism])]
            }
            capDone = true
            return [IRCMessage(command: "CAP", params: ["END"])]
        case "NAK":
            if wantsSASL {
                outcome = .failed("the server refused the capabilities \(m.params.last ?? "")")
                return []
            }
            capDone = true
            return [IRCMessage(command: "CAP", params: ["END"])]
        default:
            return []
        }
    }

    private mutating func authenticate(_ m: IRCMessage) -> [IRCMessage] {
        guard m.params.first == "+" else { return [] }
        switch configuration.sasl {
        case .plain(let user, let password):
            let payload = Array("\(user)\u{0}\(user)\u{0}\(password)".utf8)
            return Self.chunks(Data(payload).base64EncodedString()).map { IRCMessage(command: "AUTHENTICATE", params: [$0]) }
        case .external:
            return [IRCMessage(command: "AUTHENTICATE", params: ["+"])]
        case .none:
            return [IRCMessage(command: "AUTHENTICATE", params: ["*"])]
        }
    }

    /// AUTHENTICATE payloads go in 400-byte pieces; a last piece of exactly 400 is followed by "+".
    public static func chunks(_ text: String) -> [String] {
        var out: [String] = []
        var rest = Substring(text)
        while rest.count >= 400 {
            out.append(String(rest.prefix(400)))
            rest = rest.dropFirst(400)
        }
        out.append(rest.isEmpty ? "+" : String(rest))
        return out
    }

    private var wantsSASL: Bool { configuration.sasl != .none }
    private var saslMechanism: String {
        if case .external = configuration.sasl { return "EXTERNAL" }
        return "PLAIN"
    }
}

