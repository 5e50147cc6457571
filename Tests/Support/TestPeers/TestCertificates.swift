import Foundation
import NIOSSL

/// A throwaway CA and a leaf certificate for localhost and 127.0.0.1, made with
/// openssl: the one certificate maker of the tests and benchmarks.
public struct TestCertificates: Sendable {
    public let directory: String
    public var caPath: String { directory + "/ca.pem" }
    public var certPath: String { directory + "/cert.pem" }
    public var keyPath: String { directory + "/key.pem" }

    /// - Parameter subjectAltName: the leaf's names (`DNS:localhost` alone makes
    ///   one that an IP-address connection must refuse).
    public static func make(subjectAltName: String = "DNS:localhost,IP:127.0.0.1") async throws -> TestCertificates {
        let openssl = try Peers.require("openssl", package: "openssl")
        let dir = try Scratch.directory("certs")
        let script = """
            set -e
            cd '\(dir)'
            '\(openssl)' req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=msrpgw-test-ca 2>/dev/null
            '\(openssl)' req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem -out leaf.csr -subj /CN=localhost 2>/dev/null
            printf 'subjectAltName=\(subjectAltName)\\n' > ext.cnf
            '\(openssl)' x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile ext.cnf 2>/dev/null
            """
        // P-256 keys: a full run makes dozens of these, and RSA keys took seconds
        // of CPU each on a loaded machine. Awaited by polling (ChildProcess): no
        // thread held meanwhile.
        let p = try ChildProcess("/bin/sh", ["-c", script], name: "openssl")
        guard try await p.wait(timeout: .seconds(60)) == 0 else {
            throw ChildProcess.ChildFailed(description: "openssl could not make test certificates: \(p.stderr)")
        }
        return TestCertificates(directory: dir)
    }

    /// Whether a TLS client (openssl s_client, trusting this CA) completes a
    /// handshake on 127.0.0.1:`port`: a server is ready for TLS, not only listening.
    public func handshakes(port: Int) async -> Bool {
        guard let openssl = Peers.path(of: "openssl"),
              let p = try? ChildProcess(openssl, ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", caPath, "-verify_return_error", "-brief"],
                                        name: "openssl s_client")
        else { return false }
        return (try? await p.wait(timeout: .seconds(5))) == 0
    }

    /// A server configuration with the leaf certificate.
    public func serverTLS() throws -> TLSConfiguration {
        TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certPath).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem)))
    }

    /// A client configuration that trusts the test CA only, and verifies fully.
    public func clientTLS() throws -> TLSConfiguration {
        var c = TLSConfiguration.makeClientConfiguration()
        c.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caPath))
        c.certificateVerification = .fullVerification
        return c
    }
}
