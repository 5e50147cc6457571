/// `Duration` as the numbers that `Date`, NIO's `TimeAmount` and the retry
/// arithmetic take.
extension Duration {
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    public var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
