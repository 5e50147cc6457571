import Foundation
import NIOSSL
import PostgresNIO

/// Where the PostgreSQL queue is and how to reach it, from a libpq-style URL:
/// `postgresql://user@host:port/database?sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem`
/// (`host=/run/postgresql` in the query for a Unix socket directory). The
/// password comes from elsewhere (a file or the environment, never the
/// configuration file): a password in the URL is refused.
public struct PostgresLocation: Sendable, Hashable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        /// Plain TCP (loopback, a Unix socket, a trusted network).
        case disable
        /// TLS when the server offers it, unverified.
        case prefer
        /// TLS or nothing, the certificate unverified.
        case require
        /// TLS with the certificate checked against `sslrootcert` (or the
        /// system's roots) and the host name.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    /// A Unix socket directory (libpq's convention): used instead of host and port.
    public var socketDirectory: String?
    public var user: String
    public var database: String
    public var tls: TLSMode
    public var rootCertificate: String?

    public init(url: String) throws(QueueError) {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme, ["postgres", "postgresql"].contains(scheme) else {
            throw QueueError(.cannotOpen, "queue url \(Self.redacted(url)) is not a postgresql:// URL")
        }
        if parts.password != nil {
            throw QueueError(.cannotOpen, "queue url carries a password: give it in password_file or password_env instead")
        }
        var query: [String: String] = [:]
        for item in parts.queryItems ?? [] { query[item.name] = item.value ?? "" }
        let known: Set<String> = ["sslmode", "sslrootcert", "host"]
        if let unknown = query.keys.first(where: { !known.contains($0) }) {
            throw QueueError(.cannotOpen, "queue url parameter '\(unknown)' is not one of \(known.sorted())")
        }
        host = parts.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        port = parts.port ?? 5432
        socketDirectory = query["host"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        user = parts.user ?? "msrpgw"
        let path = parts.path.hasPrefix("/") ? String(parts.path.dropFirst()) : parts.path
        database = path.isEmpty ? user : path
        guard let mode = TLSMode(rawValue: query["sslmode"] ?? "prefer") else {
            throw QueueError(.cannotOpen, "queue url sslmode '\(query["sslmode"] ?? "")' is not one of \(TLSMode.allCases.map(\.rawValue))")
        }
        tls = mode
        rootCertificate = query["sslrootcert"]
        guard (1...65535).contains(port) else { throw QueueError(.cannotOpen, "queue url port \(port) is out of range") }
    }

    public var description: String {
        let at = socketDirectory.map { "\($0)/.s.PGSQL.\(port)" } ?? "\(host):\(port)"
        return "postgresql://\(user)@\(at)/\(database)"
    }

    /// The URL with any password replaced, for an error message.
    static func redacted(_ url: String) -> String {
        guard var parts = URLComponents(string: url), parts.password != nil else { return url }
        parts.password = "***"
        return parts.string ?? "(unparsable url)"
    }

    func clientConfiguration(password: String?, poolSize: Int, connectTimeout: Duration) throws(QueueError) -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let socketDirectory {
            configuration = PostgresClient.Configuration(
                unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            configuration = PostgresClient.Configuration(
                host: host, port: port, username: user, password: password, database: database, tls: try clientTLS())
        }
        configuration.options.maximumConnections = poolSize
        configuration.options.minimumConnections = 1
        configuration.options.connectTimeout = connectTimeout
        return configuration
    }

    /// One connection of its own (the schema migration at start: its errors,
    /// a refused login or a missing database, come back as they are, where the
    /// pool would retry them until the time-out).
    func connectionConfiguration(password: String?, connectTimeout: Duration) throws(QueueError) -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if let socketDirectory {
            configuration = PostgresConnection.Configuration(
                unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            do {
                tls = try tlsSettings().map { try $0.required ? .require(NIOSSLContext(configuration: $0.configuration))
                    : .prefer(NIOSSLContext(configuration: $0.configuration)) } ?? .disable
            } catch let error as QueueError {
                throw error
            } catch {
                throw QueueError(.cannotOpen, "queue TLS settings: \(error)")
            }
            configuration = PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: tls)
        }
        configuration.options.connectTimeout = .nanoseconds(connectTimeout.components.seconds * 1_000_000_000 + connectTimeout.components.attoseconds / 1_000_000_000)
        return configuration
    }

    private func clientTLS() throws(QueueError) -> PostgresClient.Configuration.TLS {
        guard let settings = try tlsSettings() else { return .disable }
        return settings.required ? .require(settings.configuration) : .prefer(settings.configuration)
    }

    /// TLS as `sslmode` asks: nil for none; whether the server must speak it.
    private func tlsSettings() throws(QueueError) -> (configuration: TLSConfiguration, required: Bool)? {
        switch tls {
        case .disable:
            return nil
        case .prefer, .require:
            var unverified = TLSConfiguration.makeClientConfiguration()
            unverified.certificateVerification = .none
            return (unverified, tls == .require)
        case .verifyFull:
            var verified = TLSConfiguration.makeClientConfiguration()
            if let rootCertificate {
                do {
                    verified.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(rootCertificate))
                } catch {
                    throw QueueError(.cannotOpen, "queue sslrootcert \(rootCertificate): \(error)")
                }
            }
            return (verified, true)
        }
    }
}
