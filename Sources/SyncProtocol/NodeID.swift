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

/// Hexadecimal text: fixed-width lower-case numbers (so that text order equals numeric order),
/// and bytes as two lower-case digits each (keys, digests, signatures, nonces).
public enum Hex {
    /// Two lower-case digits per byte.
    public static func string(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of an even number of hexadecimal digits (either case); nil for anything else.
    public static func bytes(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        func digit(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x41...0x46: return c - 0x41 + 10
            case 0x61...0x66: return c - 0x61 + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var k = 0
        while k < utf8.count {
            guard let high = digit(utf8[k]), let low = digit(utf8[k + 1]) else { return nil }
            out.append(high << 4 | low)
            k += 2
        }
        return out
    }

    /// True when every character is an ASCII hexadecimal digit (no sign, no space).
    static func isDigits(_ text: some StringProtocol) -> Bool {
        text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x46).contains($0) || (0x61...0x66).contains($0) }
    }

    static func fixed(_ value: UInt64, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.utf8.count)) + text
    }
}
