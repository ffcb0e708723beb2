import Foundation
import SyncNode
import SyncProtocol
import Testing

/// The exact protocol-2 (binary) encoding of `goldenTransaction`, as hex; also kept in
/// `Fixtures/v2-transaction.bin` for other implementations. Annotated in docs/PROTOCOL.md.
let goldenBinaryHex =
    "b2" + "0123456789abcdeffedcba9876543210" + "07" + "018bcfe568000003"
    + "09" + "0573746f636b" + "03717479" + "046e616d65" + "06776569676874" + "046e6f7465" + "0463617368"
    + "095f7265766572736573" + "06616d6f756e74" + "046d656d6f"
    + "02" + "20000000000000000000000000000002" + "30000000000000000000000000000003"
    + "05"
    + "17" + "00" + "05736b752d31" + "01" + "0118" + "018bcfe564180000" + "00" + "01" + "018bcfe560300001" + "01"
    + "10" + "02" + "0311" + "546561202f20e88cb62022677265656e22"
    + "10" + "03" + "023ff8000000000000"
    + "10" + "04" + "00"
    + "20" + "05" + "03652d31" + "03" + "06" + "0303652d30" + "07" + "01f303" + "08" + "0306726566756e64"

func bytes(hex: String) -> [UInt8] { Hex.bytes(hex)! }

@Suite("Binary wire format (protocol 2)")
struct BinaryWireTests {
    @Test func encodingMatchesGoldenBytes() throws {
        #expect(WireCodec.encode(goldenTransaction) == bytes(hex: goldenBinaryHex))
        #expect(try fixture("v2-transaction.bin") == bytes(hex: goldenBinaryHex))
        #expect(WireCodec.isBinary(WireCodec.encode(goldenTransaction)))
        #expect(!WireCodec.isBinary(Array(goldenWire.utf8)))
    }

    @Test func goldenBytesDecodeToTheTransaction() throws {
        let decoded = try WireCodec.decode(bytes(hex: goldenBinaryHex))
        #expect(decoded == goldenTransaction)
        #expect(decoded.problem(maxValueBytes: 64 * 1024) == nil)
    }

    @Test func theBinaryFormIsLessThanHalfTheJSON() {
        let binary = WireCodec.encode(goldenTransaction).count
        let json = WireCodec.encodeJSON(goldenTransaction).count
        #expect(binary * 2 < json, "binary \(binary) B, JSON \(json) B")
    }

    /// Random well-formed transactions (several records, ledger entries, bases, replaced versions,
    /// every value type, names outside ASCII) encode and decode to themselves, and decoding then
    /// encoding gives back the same bytes.
    @Test(arguments: 0..<8)
    func randomTransactionsRoundTrip(seed: UInt64) throws {
        var rng = SplitMix64(seed: 0xB2B2 &+ seed)
        for _ in 0..<200 {
            let t = Self.randomTransaction(&rng)
            let encoded = WireCodec.encode(t)
            #expect(WireCodec.isBinary(encoded))
            let decoded = try WireCodec.decode(encoded)
            #expect(decoded == t)
            #expect(WireCodec.encode(decoded) == encoded)
            // The same transaction in JSON decodes to the same value.
            #expect(try WireCodec.decode(WireCodec.encodeJSON(t)) == t)
        }
    }

    @Test func hexTextRoundTripsAndRefusesWhatIsNotHex() {
        let all = (0...255).map { UInt8($0) }
        #expect(Hex.bytes(Hex.string(all)) == all)
        #expect(Hex.string([0x00, 0x0f, 0xa0, 0xff]) == "000fa0ff")
        #expect(Hex.bytes("00FFaB") == [0x00, 0xff, 0xab])
        #expect(Hex.bytes("") == [])
        for bad in ["0", "abc", "0g", "zz", " 00", "00 ", "+1", "é0"] { #expect(Hex.bytes(bad) == nil, "\(bad)") }
    }

    @Test func everyTruncationIsRefused() {
        let golden = bytes(hex: goldenBinaryHex)
        for n in 0..<golden.count {
            #expect(throws: WireError.self, "first \(n) bytes") { try WireCodec.decode(golden[0..<n]) }
        }
    }

    /// Each class of malformed input, made by one change to the golden bytes.
    @Test(arguments: [
        ("trailing byte", goldenBinaryHex + "00", "trailing bytes"),
        ("overlong varint (seq 7 as 87 00)", goldenBinaryHex.replacingFirst("07018bcfe5", with: "8700018bcfe5"), "shortest form"),
        ("name count beyond the bytes", goldenBinaryHex.replacingFirst("03090573746f636b", with: "03ff7f0573746f636b"), "exceeds the bytes left"),
        ("a name listed twice", goldenBinaryHex.replacingFirst("03717479", with: "0573746f636b"), "listed twice"),
        ("invalid UTF-8 in a name", goldenBinaryHex.replacingFirst("03717479", with: "03ff7479"), "not valid UTF-8"),
        ("name index out of range", goldenBinaryHex.replacingFirst("100400", with: "100900"), "out of range"),
        (
            "a node listed twice", goldenBinaryHex.replacingFirst("30000000000000000000000000000003", with: "20000000000000000000000000000002"),
            "listed twice"
        ),
        ("node index out of range", goldenBinaryHex.replacingFirst("018bcfe56418000000", with: "018bcfe56418000002"), "out of range"),
        ("unknown change kind", goldenBinaryHex.replacingFirst("100400", with: "300400"), "unknown change kind"),
        ("unknown value type", goldenBinaryHex.replacingFirst("100400", with: "100409"), "unknown value type"),
        ("a real that is not finite", goldenBinaryHex.replacingFirst("023ff8000000000000", with: "027ff0000000000000"), "infinite or NaN"),
        ("a continued record with no write before", goldenBinaryHex.replacingFirst("0517000573", with: "0516000573"), "no write precedes"),
        (
            "names out of order of first use",
            goldenBinaryHex.replacingFirst("03717479046e616d65", with: "046e616d6503717479").replacingFirst(
                "05736b752d31010118", with: "05736b752d31020118"
            )
            .replacingFirst("10020311", with: "10010311"), "order of first use"
        ),
        (
            "nodes out of order of first use",
            goldenBinaryHex.replacingFirst(
                "2000000000000000000000000000000230000000000000000000000000000003",
                with: "3000000000000000000000000000000320000000000000000000000000000002"
            ).replacingFirst("018bcfe56418000000", with: "018bcfe56418000001").replacingFirst("018bcfe56030000101", with: "018bcfe56030000100"),
            "order of first use"
        ),
        (
            "change count above the bytes left", goldenBinaryHex.replacingFirst("000000000000000305", with: "0000000000000003914e"),
            "exceeds the bytes left"
        ),
    ])
    func malformedBinaryIsRefused(what: String, hex: String, reason: String) {
        #expect(hex != goldenBinaryHex, "the mutation of '\(what)' must apply")
        #expect(hex.count % 2 == 0)
        do {
            _ = try WireCodec.decode(bytes(hex: hex))
            Issue.record("\(what): decoded")
        } catch {
            #expect(error.description.contains(reason), "\(what): \(error)")
        }
    }

    @Test func nonCanonicalFormsAreRefused() throws {
        let origin = goldenOrigin
        let clock = Timestamp(millis: 1_700_000_000_000, counter: 3, node: origin)
        // Two writes to one record encoded with the record repeated, and a ledger entry whose fields
        // are out of order: decoding either would give a transaction whose encoding differs.
        let repeated =
            [0xB2] + bytesOf(origin) + [1] + clockBytes(clock) + [2, 1, 0x63, 1, 0x66] + [0] + [2]
            + [0x11, 0, 1, 0x72, 1, 0] + [0x11, 0, 1, 0x72, 1, 0]
        #expect(throws: WireError.self) { try WireCodec.decode(repeated) }
        let unordered =
            [0xB2] + bytesOf(origin) + [1] + clockBytes(clock) + [3, 1, 0x6C, 1, 0x62, 1, 0x61] + [0] + [1]
            + [0x20, 0, 1, 0x65, 2, 1, 0, 2, 0]
        #expect(throws: WireError.self) { try WireCodec.decode(unordered) }
        // The same entry with its fields in order decodes.
        let ordered =
            [0xB2] + bytesOf(origin) + [1] + clockBytes(clock) + [3, 1, 0x6C, 1, 0x61, 1, 0x62] + [0] + [1]
            + [0x20, 0, 1, 0x65, 2, 1, 0, 2, 0]
        #expect(try WireCodec.decode(ordered).changes == [.append(LedgerEntry(ledger: "l", entryID: "e", fields: ["a": .null, "b": .null]))])
        // An unused name is refused.
        let unused =
            [0xB2] + bytesOf(origin) + [1] + clockBytes(clock) + [4, 1, 0x6C, 1, 0x61, 1, 0x62, 1, 0x7A] + [0] + [1]
            + [0x20, 0, 1, 0x65, 2, 1, 0, 2, 0]
        #expect(throws: WireError.self) { try WireCodec.decode(unused) }
    }

    @Test func aChangeKindFromTheFutureIsKeptAsUnknown() throws {
        let origin = goldenOrigin
        let clock = Timestamp(millis: 1_700_000_000_000, counter: 3, node: origin)
        let body =
            [0xB2] + bytesOf(origin) + [1] + clockBytes(clock) + [1, 1, 0x63] + [0] + [2]
            + [0x11, 0, 1, 0x72, 0, 0] + [0x81, 3, 0xDE, 0xAD, 0x01]
        let t = try WireCodec.decode(body)
        #expect(t.changes.count == 2)
        #expect(t.changes[1] == .unknown(kind: "x81", payload: .string("dead01")))
        #expect(t.problem(maxValueBytes: 1024) == nil)
    }

    @Test func aNodeStoresAndRelaysBinaryBodiesExactly() throws {
        let dir = TempDir("binary")
        defer { dir.remove() }
        let a = try Replica.make(in: dir, "a", millis: 1_700_000_000_000)
        let b = try Replica.make(in: dir, "b", millis: 1_700_000_000_000)
        let made = try a.store.commit([.put(collection: "projects", recordID: "p1", fields: [FieldAssignment("name", .text("学校"))])])
        let logged = try a.store.transactions(missingFrom: VersionVector()).transactions
        #expect(logged.map(\.body) == [WireCodec.encode(made)])
        #expect(WireCodec.isBinary(logged[0].body))
        try exchange(from: a.store, to: b.store)
        #expect(try b.store.transactions(missingFrom: VersionVector()).transactions.map(\.body) == logged.map(\.body))
        #expect(try b.store.record("projects", "p1")?.fields["name"] == .text("学校"))
    }

    // MARK: Helpers

    static func randomTransaction(_ rng: inout SplitMix64) -> Transaction {
        let origin = node(UInt64(rng.int(1...4)))
        let hlc = Timestamp(millis: 1_700_000_000_000 + UInt64(rng.int(0...1_000_000)), counter: UInt16(rng.int(0...3)), node: origin)
        let names = ["projects", "funds", "name", "stage", "县", "amount", "fen", "_deleted", "a-very-long-field-name-for-tables"]
        func value() -> Value {
            switch rng.int(0...4) {
            case 0: return .null
            case 1: return .int(Int64(bitPattern: rng.next()) >> UInt64(rng.int(0...63)))
            case 2: return .real(Double(rng.int(-1_000_000...1_000_000)) / 64)
            case 3: return .text(rng.pick(["", "x", "临潭县 school", String(repeating: "长", count: rng.int(1...80))]))
            default: return .int(Int64(rng.int(-2...2)))
            }
        }
        func older() -> Timestamp {
            Timestamp(
                millis: hlc.millis - UInt64(rng.int(1...10_000)), counter: UInt16(rng.int(0...65535)), node: node(UInt64(rng.int(1...6))))
        }
        var changes: [Change] = []
        var recordNumber = 0
        for _ in 0..<rng.int(1...6) {
            if rng.chance(25) {
                var fields: [String: Value] = [:]
                for _ in 0..<rng.int(0...4) { fields[rng.pick(names)] = value() }
                changes.append(.append(LedgerEntry(ledger: rng.pick(names), entryID: "e\(rng.int(0...99))", fields: fields)))
            } else {
                recordNumber += 1
                let collection = rng.pick(names)
                let recordID = "r\(recordNumber)-\(rng.int(0...9))"
                var fields = names.shuffled(using: &rng).prefix(rng.int(1...4))
                if rng.chance(10) { fields = ["f"] }
                for field in fields {
                    let resolves = (0..<(rng.chance(20) ? rng.int(1...3) : 0)).map { _ in older() }
                    changes.append(
                        .set(
                            FieldWrite(
                                collection: collection, recordID: recordID, field: field, value: value(), base: rng.chance(50) ? older() : nil,
                                resolves: resolves)))
                }
            }
        }
        return Transaction(origin: origin, seq: UInt64(rng.int(1...300)), hlc: hlc, changes: changes)
    }
}

private func bytesOf(_ id: NodeID) -> [UInt8] {
    withUnsafeBytes(of: id.high.bigEndian) { Array($0) } + withUnsafeBytes(of: id.low.bigEndian) { Array($0) }
}

private func clockBytes(_ ts: Timestamp) -> [UInt8] {
    withUnsafeBytes(of: (ts.millis << 16 | UInt64(ts.counter)).bigEndian) { Array($0) }
}

extension String {
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}

/// Who made a transaction (`Change.author`): kind 0x80 of the binary form (a kind an earlier
/// version keeps and relays as one from the future) and `"k": "by"` in JSON, one per transaction.
@Suite struct AuthorWireTests {
    @Test func anAuthorRoundTripsAndIsCheckedAndEarlierVersionsSeeAFutureKind() throws {
        let origin = NodeID(high: 7, low: 7)
        let t = Transaction(
            origin: origin, seq: 1, hlc: Timestamp(millis: 1_500_000_000_000, counter: 0, node: origin),
            changes: [
                .append(LedgerEntry(ledger: "activities", entryID: "e1", fields: ["county": .text("lintan"), "attendees": .int(40)])),
                .set(FieldWrite(collection: "projects", recordID: "lt-1", field: "name", value: .text("东丽小学"))), .author("王芳"),
            ])
        let binary = WireCodec.encode(t)
        #expect(binary.first == 0xB2)
        #expect(try WireCodec.decode(binary) == t)
        #expect(binary.suffix(8) == [0x80, 6] + Array("王芳".utf8))
        let json = WireCodec.encodeJSON(t)
        #expect(try WireCodec.decode(json) == t)
        #expect(t.problem(maxValueBytes: 1024) == nil)
        var twice = t
        twice.changes.append(.author("李军"))
        #expect(twice.problem(maxValueBytes: 1024)?.contains("author twice") == true)
        var long = t
        long.changes[2] = .author(String(repeating: "名", count: 100))
        #expect(long.problem(maxValueBytes: 1024)?.contains("longer than") == true)
        // Any node may say who made its own work.
        let author = Author(node: origin, site: "lintan", role: .county, label: "lintan-1")
        #expect(PolicyRules.defaults.violation(of: .author("王芳"), by: author) == nil)
    }
}
