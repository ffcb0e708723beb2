import PropertyBased
import SyncProtocol
import Testing

/// Timestamps drawn either from narrow ranges (so that millis, counter and node often tie) or from
/// the whole range.
let timestamps = Generator<Timestamp, Shrink.None<Timestamp>>(run: { rng in
    func part<T: FixedWidthInteger & UnsignedInteger>(_ narrow: ClosedRange<T>, _ wide: ClosedRange<T>, _ rng: inout some RandomNumberGenerator) -> T
    {
        Bool.random(using: &rng) ? T.random(in: narrow, using: &rng) : T.random(in: wide, using: &rng)
    }
    let millis = part(UInt64(0)...2, 0...Timestamp.maxMillis, &rng)
    let counter = part(UInt16(0)...2, 0...UInt16.max, &rng)
    let high = part(UInt64(0)...1, 0...UInt64.max, &rng)
    let low = part(UInt64(0)...1, 0...UInt64.max, &rng)
    return Timestamp(millis: millis, counter: counter, node: NodeID(high: high, low: low))
})

/// Lexicographic order of byte arrays, as SQLite's `memcmp` compares BLOBs.
func bytesLess(_ a: [UInt8], _ b: [UInt8]) -> Bool { a.lexicographicallyPrecedes(b) }

@Suite("Timestamp encodings")
struct TimestampEncodingTests {
    @Test func byteOrderEqualsTimestampOrder() async {
        await propertyCheck(count: 1000, input: timestamps, timestamps) { a, b in
            #expect(a.bytes.count == 24)
            #expect(bytesLess(a.bytes, b.bytes) == (a < b), "\(a.hex) vs \(b.hex)")
            #expect((a.bytes == b.bytes) == (a == b), "\(a.hex) vs \(b.hex)")
            #expect((a.hex < b.hex) == (a < b), "hex text order: \(a.hex) vs \(b.hex)")
        }
    }

    @Test func bytesAndHexRoundTrip() async {
        await propertyCheck(count: 1000, input: timestamps) { t in
            #expect(Timestamp(bytes: t.bytes) == t)
            #expect(t.hex.count == 48)
            #expect(Timestamp(hex: t.hex) == t)
            #expect(Timestamp(hex: t.hex.uppercased()) == t)
            #expect(Timestamp(clockHex: t.clockHex, node: t.node) == t)
            #expect(NodeID(hex: t.node.hex) == t.node)
        }
    }

    @Test func goldenTimestampEncoding() {
        let t = Timestamp(millis: 0x0123_4567_89AB, counter: 0xCDEF, node: NodeID(high: 0x0011_2233_4455_6677, low: 0x8899_AABB_CCDD_EEFF))
        #expect(t.hex == "0123456789abcdef00112233445566778899aabbccddeeff")
        #expect(t.clockHex == "0123456789abcdef")
        #expect(
            t.bytes == [
                0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC,
                0xDD, 0xEE, 0xFF,
            ])
        #expect(Timestamp(millis: 1, counter: 2, node: node(0)).hex == "000000000001" + "0002" + String(repeating: "0", count: 32))
    }

    @Test func malformedTextAndBytesAreRejected() {
        let good = ts(1_700_000_000_000, 5, 2)
        #expect(Timestamp(hex: String(good.hex.dropLast())) == nil)
        #expect(Timestamp(hex: good.hex + "0") == nil)
        #expect(Timestamp(hex: "g" + good.hex.dropFirst()) == nil)
        #expect(Timestamp(bytes: good.bytes.dropLast()) == nil)
        #expect(Timestamp(bytes: good.bytes + [0]) == nil)
        #expect(Timestamp(clockHex: "00000000000", node: good.node) == nil)
        #expect(NodeID(hex: String(repeating: "z", count: 32)) == nil)
    }

    /// Regression (found by this suite, fixed in Sources/SyncProtocol/NodeID.swift `init?(hex:)`, Sources/SyncProtocol/Timestamp.swift
    /// `init?(clockHex:node:)`): `UInt64(_:radix:)` accepts a leading sign, so text that is not 32 (or
    /// 16) hexadecimal digits parses, and two different wire texts decode to the same transaction.
    @Test func hexParsersAcceptOnlyHexDigits() {
        let node = String(repeating: "0", count: 31) + "1"
        #expect(NodeID(hex: "+" + node.dropFirst()) == nil)
        #expect(NodeID(hex: String(node.prefix(16)) + "+" + node.suffix(15)) == nil)
        #expect(NodeID(hex: "-" + node.dropFirst()) == nil)
        #expect(Timestamp(clockHex: "+000000000050000", node: goldenOrigin) == nil)
        #expect(Timestamp(clockHex: "000000000005+000", node: goldenOrigin) == nil)
        #expect(Timestamp(hex: "+00000000001" + "0000" + node) == nil)
        #expect(throws: WireError.self) {
            try WireCodec.decode(Array(#"{"c":[{"k":"zap"}],"o":"\#(goldenOrigin.hex)","s":1,"t":"+000000000050000"}"#.utf8))
        }
    }
}
