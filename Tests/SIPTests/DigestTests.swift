@testable import Digest
import Testing
@testable import SIP

/// Digest responses against the published examples, and challenge parsing.
struct DigestTests {
    /// RFC 2617 §3.5 (MD5, qop=auth).
    @Test func rfc2617Example() throws {
        let c = try #require(DigestChallenge(
            #"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#))
        let v = c.authorization(username: "Mufasa", password: "Circle Of Life", method: "GET", uri: "/dir/index.html", cnonce: "0a4f113b", nonceCount: 1)
        #expect(v.contains(#"response="6629fae49393a05397450978507c4ef1""#))
        #expect(v.contains("qop=auth, nc=00000001"))
        #expect(v.contains(#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#))
    }

    /// RFC 7616 §3.9.1 (SHA-256 and MD5 for the same request).
    @Test func rfc7616Examples() throws {
        let base = #"realm="http-auth@example.org", qop="auth, auth-int", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
        let sha = try #require(DigestChallenge("Digest " + base + ", algorithm=SHA-256"))
        let md5 = try #require(DigestChallenge("Digest " + base + ", algorithm=MD5"))
        #expect(DigestChallenge.preferred(["Digest " + base + ", algorithm=MD5", "Digest " + base + ", algorithm=SHA-256"])?.algorithm == .sha256)
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
        #expect(sha.authorization(username: "Mufasa", password: "Circle of Life", method: "GET", uri: "/dir/index.html", cnonce: cnonce, nonceCount: 1)
            .contains(#"response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1""#))
        #expect(md5.authorization(username: "Mufasa", password: "Circle of Life", method: "GET", uri: "/dir/index.html", cnonce: cnonce, nonceCount: 1)
            .contains(#"response="8ca523f5e9506fed4657c9700eebdbec""#))
    }

    /// RFC 2069 style (no qop): response = H(HA1:nonce:HA2), no nc or cnonce.
    @Test func withoutQop() throws {
        let c = try #require(DigestChallenge(#"Digest realm="r", nonce="n""#))
        let v = c.authorization(username: "u", password: "p", method: "REGISTER", uri: "sip:r", cnonce: "x", nonceCount: 1)
        let ha1 = DigestChallenge.Algorithm.md5.hash("u:r:p"), ha2 = DigestChallenge.Algorithm.md5.hash("REGISTER:sip:r")
        #expect(v.contains("response=\"\(DigestChallenge.Algorithm.md5.hash("\(ha1):n:\(ha2)"))\""))
        #expect(!v.contains("cnonce"))
    }

    @Test(arguments: [
        "Basic realm=\"x\"", "Digest nonce=\"n\"", "Digest realm=\"r\"", "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256",
        "Digest", "", "Digest realm=\"unterminated, nonce=\"n\"",
    ])
    func refusedChallenges(_ header: String) {
        #expect(DigestChallenge(header) == nil)
    }

    @Test func quotedValuesWithEscapesAndCommas() throws {
        let c = try #require(DigestChallenge(#"Digest realm="a, \"b\"", nonce="n1", stale=TRUE, qop="auth""#))
        #expect(c.realm == #"a, "b""#)
        #expect(c.stale)
        #expect(c.authorization(username: "u\"x", password: "p", method: "M", uri: "sip:x", cnonce: "c", nonceCount: 2)
            .contains(#"username="u\"x""#))
    }
}
