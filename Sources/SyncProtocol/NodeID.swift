/// A node's identity: 128 random bits, generated once at `init` and never reused.
///
/// Ordered by its big-endian bytes, which is also the order of its hexadecimal text.
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let high: UInt64
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A fresh random identity.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> NodeID {
        NodeID(high: generator.next(), low: generator.next())
    }

    /// Parses 32 hexadecimal digits (either case). Returns nil for anything else.
    public init?(hex: some StringProtocol) {
        guard hex.utf8.count == 32, Hex.isDigits(hex),
            let high = UInt64(hex.prefix(16), radix: 16),
            let low = UInt64(hex.suffix(16), radix: 16)
        else { return nil }
        self.init(high: high, low: low)
    }

    /// 32 lower-case hexadecimal digits.
    public var hex: String { Hex.fixed(high, digits: 16) + Hex.fixed(low, digits: 16) }

    /// The first 8 hex digits: enough to tell nodes apart in tables and messages.
    public var short: String { String(hex.prefix(8)) }

    public var description: String { hex }

    public static func < (lhs: NodeID, rhs: NodeID) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}

extension NodeID: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = NodeID(hex: text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "a node id is 32 hexadecimal digits"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}

/// Fixed-width lower-case hexadecimal, so that text order equals numeric order.
enum Hex {
    /// True when every character is an ASCII hexadecimal digit (no sign, no space).
    static func isDigits(_ text: some StringProtocol) -> Bool {
        text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x46).contains($0) || (0x61...0x66).contains($0) }
    }

    static func fixed(_ value: UInt64, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.utf8.count)) + text
    }
}
