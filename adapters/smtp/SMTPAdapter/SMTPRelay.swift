/// A submission server and how to talk to it.
public struct SMTPRelay: Sendable, Hashable {
    public enum Security: String, Sendable {
        /// Plain connection, then STARTTLS; refuse to send if the server does not offer it.
        case startTLS = "starttls"
        /// TLS from the first byte (port 465).
        case implicitTLS = "tls"
        /// No TLS at all: only for a relay on the same host, and said loudly in the log.
        case none
    }

    public var name: String
    public var host: String
    public var port: Int
    public var security: Security
    /// Verify the server's certificate (on by default); `caFile` adds a trusted CA (PEM).
    public var verifyCertificate: Bool
    public var caFile: String?
    public var username: String?
    public var password: String?
    /// `PLAIN` or `LOGIN` to use that one; nil picks PLAIN when offered, else LOGIN.
    public var authMechanism: String?
    /// The name we give in EHLO.
    public var heloName: String
    /// Connections kept to this relay at most (and reused for later mails).
    public var maxConnections: Int
    public var timeouts: SMTPTimeouts

    public init(
        name: String = "default", host: String, port: Int = 587, security: Security = .startTLS, verifyCertificate: Bool = true,
        caFile: String? = nil, username: String? = nil, password: String? = nil, authMechanism: String? = nil, heloName: String = "msrpgw.invalid",
        maxConnections: Int = 4, timeouts: SMTPTimeouts = SMTPTimeouts()
    ) {
        self.name = name
        self.host = host
        self.port = port
        self.security = security
        self.verifyCertificate = verifyCertificate
        self.caFile = caFile
        self.username = username
        self.password = password
        self.authMechanism = authMechanism
        self.heloName = heloName
        self.maxConnections = maxConnections
        self.timeouts = timeouts
    }
}

/// How long to wait for each reply: RFC 5321 §4.5.3.2's minimums by default.
public struct SMTPTimeouts: Sendable, Hashable {
    public var connect: Duration
    /// The 220 greeting.
    public var greeting: Duration
    /// EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET.
    public var command: Duration
    /// The 354 after DATA.
    public var dataStart: Duration
    /// The reply after the final ".".
    public var dataEnd: Duration

    public init(connect: Duration = .seconds(30), greeting: Duration = .seconds(300), command: Duration = .seconds(300),
                dataStart: Duration = .seconds(120), dataEnd: Duration = .seconds(600)) {
        self.connect = connect
        self.greeting = greeting
        self.command = command
        self.dataStart = dataStart
        self.dataEnd = dataEnd
    }
}
