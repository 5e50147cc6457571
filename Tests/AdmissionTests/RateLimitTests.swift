import Admission
import NIOCore
import Testing

/// Token buckets and the per-key limiter, with time as a value.
@Suite struct RateLimitTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func aBucketAllowsItsBurstThenItsRate() {
        var bucket = TokenBucket(RateLimit(rate: 10, burst: 5), now: t0)
        for i in 0..<5 { #expect(bucket.take(now: t0) == nil, "burst \(i)") }
        // Empty: the next token is 100 ms away.
        let wait = bucket.take(now: t0)
        #expect(wait == .milliseconds(100))
        #expect(bucket.take(now: t0 + .milliseconds(50)) != nil)
        #expect(bucket.take(now: t0 + .milliseconds(100)) == nil)
        // Refills up to the burst only.
        #expect(bucket.isFull(now: t0 + .seconds(10)))
        for _ in 0..<5 { #expect(bucket.take(now: t0 + .seconds(10)) == nil) }
        #expect(bucket.take(now: t0 + .seconds(10)) != nil)
    }

    @Test func keysAreLimitedApart() {
        let limiter = RateLimiter<String>(RateLimit(rate: 1, burst: 2))
        #expect(limiter.admit("a", now: t0) == nil)
        #expect(limiter.admit("a", now: t0) == nil)
        #expect(limiter.admit("a", now: t0) != nil)
        #expect(limiter.admit("b", now: t0) == nil, "another key is not held back")
    }

    @Test func aFloodOfKeysHoldsBoundedMemory() {
        let limiter = RateLimiter<Int>(RateLimit(rate: 1, burst: 1), maxKeys: 100)
        for k in 0..<100 { #expect(limiter.admit(k, now: t0) == nil) }
        // All busy: a newcomer is refused rather than growing the table.
        #expect(limiter.admit(1000, now: t0) != nil)
        #expect(limiter.keys == 100)
        // Once they have refilled, they are forgotten and newcomers come in.
        #expect(limiter.admit(1001, now: t0 + .seconds(5)) == nil)
        #expect(limiter.keys == 1)
    }

    @Test func oneLogLinePerInterval() {
        var throttle = LogThrottle(interval: .seconds(10))
        #expect(throttle.admit(now: t0) == (true, 0))
        #expect(throttle.admit(now: t0 + .seconds(1)).log == false)
        #expect(throttle.admit(now: t0 + .seconds(2)).log == false)
        #expect(throttle.admit(now: t0 + .seconds(11)) == (true, 2))
    }

    @Test func sourcesAreAddressesOrIPv6Networks() throws {
        let a = SourceKey(try SocketAddress(ipAddress: "192.0.2.1", port: 1))
        #expect(a == SourceKey(try SocketAddress(ipAddress: "192.0.2.1", port: 2)))
        #expect(a != SourceKey(try SocketAddress(ipAddress: "192.0.2.2", port: 1)))
        #expect(a == SourceKey(try SocketAddress(ipAddress: "::ffff:192.0.2.1", port: 1)), "an IPv4 client of a dual-stack socket")
        #expect(SourceKey(try SocketAddress(ipAddress: "2001:db8:1:2::1", port: 1)) == SourceKey(try SocketAddress(ipAddress: "2001:db8:1:2:ffff::9", port: 1)))
        #expect(SourceKey(try SocketAddress(ipAddress: "2001:db8:1:2::1", port: 1)) != SourceKey(try SocketAddress(ipAddress: "2001:db8:1:3::1", port: 1)))
    }
}
