import NIOConcurrencyHelpers
import NIOCore

/// Token buckets by key (a source address, a token): what one key may push,
/// whatever the others do. Buckets that have refilled are forgotten once there
/// are many, so that a flood of keys holds bounded memory.
public final class RateLimiter<Key: Hashable & Sendable>: Sendable {
    public let limit: RateLimit
    private let maxKeys: Int
    private let buckets = NIOLockedValueBox<[Key: TokenBucket]>([:])

    public init(_ limit: RateLimit, maxKeys: Int = 65_536) {
        self.limit = limit
        self.maxKeys = maxKeys
    }

    /// nil when admitted; otherwise how long until `key` may come back.
    public func admit(_ key: Key, now: NIODeadline = .now()) -> TimeAmount? {
        buckets.withLockedValue { all in
            if all[key] == nil, all.count >= maxKeys {
                all = all.filter { !$0.value.isFull(now: now) }
                // Still full of busy keys: a newcomer shares the refusal of a flood.
                if all.count >= maxKeys { return .seconds(1) }
            }
            return all[key, default: TokenBucket(limit, now: now)].take(now: now)
        }
    }

    /// Keys held now (for tests: memory stays bounded).
    public var keys: Int { buckets.withLockedValue { $0.count } }
}

/// The part of a peer's address that counts as one source: an IPv4 address, or
/// the /64 of an IPv6 one (an IPv4 client of a dual-stack socket is its IPv4 address).
public struct SourceKey: Hashable, Sendable {
    let bytes: [UInt8]

    public init(_ address: SocketAddress) {
        let all = CIDR.bytes(address)
        guard all.count == 16 else {
            bytes = all  // IPv4: the address
            return
        }
        // An IPv4 client of a dual-stack socket (::ffff:a.b.c.d) is its IPv4 address.
        let mapped = all.prefix(10).allSatisfy { $0 == 0 } && all[10] == 0xff && all[11] == 0xff
        bytes = mapped ? Array(all.suffix(4)) : Array(all.prefix(8))
    }
}
