/// A hybrid logical clock reading: 48-bit milliseconds since 1970, a 16-bit counter, and the node
/// that produced it as the final tie-break. Two timestamps from different nodes are never equal.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Largest representable millisecond value (2^48 - 1, the year 10889).
    public static let maxMillis: UInt64 = (1 << 48) - 1

    public let millis: UInt64
    public let counter: UInt16
    public let node: NodeID

    public init(millis: UInt64, counter: UInt16, node: NodeID) {
        precondition(millis <= Timestamp.maxMillis, "HLC milliseconds exceed 48 bits")
        self.millis = millis
        self.counter = counter
        self.node = node
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        (lhs.millis, lhs.counter, lhs.node) < (rhs.millis, rhs.counter, rhs.node)
    }

    // MARK: - Encodings whose order equals time order

    /// 24 bytes: 6 bytes of milliseconds, 2 of counter, 16 of node id, all big-endian.
    /// `memcmp` order of these bytes is timestamp order (SQLite compares BLOBs that way).
    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(24)
        for shift in stride(from: 40, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: millis >> UInt64(shift))) }
        out.append(UInt8(truncatingIfNeeded: counter >> 8))
        out.append(UInt8(truncatingIfNeeded: counter))
        for word in [node.high, node.low] {
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return out
    }

    /// Inverse of `bytes`; nil unless exactly 24 bytes.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 24 else { return nil }
        let b = Array(bytes)
        func word(_ range: Range<Int>) -> UInt64 { b[range].reduce(0) { $0 << 8 | UInt64($1) } }
        self.init(
            millis: word(0..<6), counter: UInt16(word(6..<8)),
            node: NodeID(high: word(8..<16), low: word(16..<24)))
    }

    /// The clock part only: 16 hex digits (12 of milliseconds, 4 of counter).
    public var clockHex: String { Hex.fixed(millis, digits: 12) + Hex.fixed(UInt64(counter), digits: 4) }

    /// 48 hex digits: clock part then node id. Text order equals timestamp order.
    public var hex: String { clockHex + node.hex }

    public var description: String { hex }

    /// Parses the 48-digit form produced by `hex`.
    public init?(hex: some StringProtocol) {
        guard hex.utf8.count == 48, let node = NodeID(hex: hex.suffix(32)) else { return nil }
        self.init(clockHex: hex.prefix(16), node: node)
    }

    /// Parses the 16-digit clock part for a known node.
    public init?(clockHex: some StringProtocol, node: NodeID) {
        guard clockHex.utf8.count == 16, Hex.isDigits(clockHex),
            let millis = UInt64(clockHex.prefix(12), radix: 16),
            let counter = UInt16(clockHex.suffix(4), radix: 16)
        else { return nil }
        self.init(millis: millis, counter: counter, node: node)
    }
}
