import Foundation

/// One configured webhook receiver.
public struct WebhookEndpoint: Sendable, Hashable {
    /// Its name in the configuration (`[webhooks.ops]`).
    public var name: String
    public var url: String
    /// Signing secrets, `whsec_<base64>`. Every request carries one signature per
    /// secret, so a receiver can rotate: add the new secret, deploy, drop the old.
    public var secrets: [String]
    /// Whole-request time limit (connect, send, answer).
    public var timeout: Duration
    /// Extra request headers (an API key the receiver wants, say).
    public var headers: [String: String]
    /// A CA (PEM) this endpoint's certificate is checked against instead of the
    /// system's: a receiver inside, with a private CA, trusted for itself only.
    public var caFile: String?

    public init(name: String, url: String, secrets: [String], timeout: Duration = .seconds(10), headers: [String: String] = [:],
                caFile: String? = nil) {
        self.name = name
        self.url = url
        self.secrets = secrets
        self.timeout = timeout
        self.headers = headers
        self.caFile = caFile
    }
}

/// A webhook configuration that cannot work, with the reason.
public struct WebhookConfigurationError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension WebhookEndpoint {
    /// Checks the URL and the secrets.
    public func validate() throws(WebhookConfigurationError) {
        guard WebhookTarget(url: url, caFile: caFile) != nil
        else { throw WebhookConfigurationError("webhook \(name): \(url.debugDescription) is not an http(s) URL") }
        guard !secrets.isEmpty else { throw WebhookConfigurationError("webhook \(name): no signing secret") }
        for s in secrets {
            do { _ = try WebhookSigner.key(from: s) } catch { throw WebhookConfigurationError("webhook \(name): \(error)") }
        }
        guard timeout > .zero else { throw WebhookConfigurationError("webhook \(name): timeout must be positive") }
    }

    /// Whether the URL is plain http to somewhere other than loopback (allowed,
    /// but the daemon says so loudly: the payload travels in clear).
    public var isCleartextOffHost: Bool {
        guard let origin = WebhookTarget(url: url, caFile: caFile)?.origin, !origin.tls else { return false }
        return !(origin.host == "localhost" || origin.host.hasPrefix("127.") || origin.host == "::1")
    }
}
