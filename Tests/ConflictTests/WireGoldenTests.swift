import Foundation
import SyncNode
import SyncProtocol
import Testing

/// The exact protocol-1 (JSON) encoding of `goldenTransaction`, also kept in `Fixtures/v1-transaction.json`
/// (no trailing newline) for other implementations.
let goldenWire =
    #"{"c":[{"b":"018bcfe56418000020000000000000000000000000000002","c":"stock","f":"qty","k":"set","r":"sku-1","v":12,"x":["018bcfe56030000130000000000000000000000000000003"]},{"c":"stock","f":"name","k":"set","r":"sku-1","v":"Tea / 茶 \"green\""},{"c":"stock","f":"weight","k":"set","r":"sku-1","v":{"real":1.5}},{"c":"stock","f":"note","k":"set","r":"sku-1","v":null},{"d":{"_reverses":"e-0","amount":-250,"memo":"refund"},"e":"e-1","k":"add","l":"cash"}],"o":"0123456789abcdeffedcba9876543210","s":7,"t":"018bcfe568000003"}"#

let goldenOrigin = NodeID(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)

let goldenTransaction = Transaction(
    origin: goldenOrigin, seq: 7, hlc: Timestamp(millis: 1_700_000_000_000, counter: 3, node: goldenOrigin),
    changes: [
        .set(
            FieldWrite(
                collection: "stock", recordID: "sku-1", field: "qty", value: .int(12), base: ts(1_699_999_999_000, 0, 2),
                resolves: [ts(1_699_999_998_000, 1, 3)])),
        .set(FieldWrite(collection: "stock", recordID: "sku-1", field: "name", value: .text("Tea / 茶 \"green\""))),
        .set(FieldWrite(collection: "stock", recordID: "sku-1", field: "weight", value: .real(1.5))),
        .set(FieldWrite(collection: "stock", recordID: "sku-1", field: "note", value: .null)),
        .append(LedgerEntry(ledger: "cash", entryID: "e-1", fields: ["amount": .int(-250), "memo": .text("refund"), "_reverses": .text("e-0")])),
    ])

func fixture(_ name: String) throws -> [UInt8] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent(name)
    return [UInt8](try Data(contentsOf: url))
}

/// A transaction of a newer protocol: an unknown change kind with members of every JSON type, an
/// unknown member inside a known change, and an unknown top-level member.
func futureTransactionJSON(origin: NodeID, clockHex: String) -> String {
    #"{"c":[{"c":"stock","f":"name","k":"set","m":{"future":true},"r":"sku-9","v":"from the future"},"#
        + #"{"k":"zap","n":null,"q":[1,"two",null,true,false,{"real":1.5},-7.25],"w":{"deep":{"er":-3}}}],"#
        + #""o":"\#(origin.hex)","s":1,"t":"\#(clockHex)","zz":"unknown top-level member"}"#
}

@Suite("Wire format")
struct WireGoldenTests {
    @Test func encodingMatchesGoldenBytes() {
        let bytes = WireCodec.encodeJSON(goldenTransaction)
        #expect(String(decoding: bytes, as: UTF8.self) == goldenWire)
        #expect(bytes == Array(goldenWire.utf8))
    }

    @Test func fixtureFileMatchesGoldenBytes() throws {
        #expect(try fixture("v1-transaction.json") == Array(goldenWire.utf8))
    }

    @Test func goldenBytesDecodeToTheTransaction() throws {
        let decoded = try WireCodec.decode(Array(goldenWire.utf8))
        #expect(decoded == goldenTransaction)
        #expect(decoded.problem(maxValueBytes: 64 * 1024) == nil)
        #expect(WireCodec.encodeJSON(decoded) == Array(goldenWire.utf8))
    }

    @Test func encodingIsIndependentOfDictionaryOrder() {
        // The same fields inserted in other orders must encode identically (sorted keys).
        var fields: [String: Value] = [:]
        for key in ["z", "a", "m", "_reverses", "b"].shuffled() { fields[key] = .int(1) }
        let a = Transaction(
            origin: goldenOrigin, seq: 1, hlc: Timestamp(millis: 1, counter: 0, node: goldenOrigin),
            changes: [.append(LedgerEntry(ledger: "l", entryID: "e", fields: fields))])
        var b = a
        b.changes = [
            .append(LedgerEntry(ledger: "l", entryID: "e", fields: Dictionary(uniqueKeysWithValues: fields.reversed().map { ($0.key, $0.value) })))
        ]
        #expect(WireCodec.encodeJSON(a) == WireCodec.encodeJSON(b))
        #expect(String(decoding: WireCodec.encodeJSON(a), as: UTF8.self).contains(#""d":{"_reverses":1,"a":1,"b":1,"m":1,"z":1}"#))
        #expect(WireCodec.encode(a) == WireCodec.encode(b))
    }

    @Test func unknownChangeKindDecodesAsUnknownWithItsPayload() throws {
        let origin = node(7)
        let json = futureTransactionJSON(origin: origin, clockHex: "018bcfe568000000")
        let t = try WireCodec.decode(Array(json.utf8))
        #expect(t.origin == origin)
        #expect(t.seq == 1)
        #expect(t.changes.count == 2)
        #expect(t.changes[0] == .set(FieldWrite(collection: "stock", recordID: "sku-9", field: "name", value: .text("from the future"))))
        guard case .unknown(let kind, let payload) = t.changes[1] else {
            Issue.record("expected an unknown change, got \(t.changes[1])")
            return
        }
        #expect(kind == "zap")
        #expect(
            payload
                == .object([
                    "k": .string("zap"), "n": .null,
                    "q": .array([.integer(1), .string("two"), .null, .bool(true), .bool(false), .object(["real": .number(1.5)]), .number(-7.25)]),
                    "w": .object(["deep": .object(["er": .integer(-3)])]),
                ]))
        #expect(t.problem(maxValueBytes: 1024) == nil, "unknown changes do not make a transaction malformed")
    }

    @Test func unknownChangeReencodesToTheSameCanonicalBytes() throws {
        // Without unknown members outside the unknown change, the decoded form re-encodes byte for byte.
        let origin = node(7)
        let canonical =
            #"{"c":[{"k":"zap","n":null,"q":[1,"two",null,true,false,{"real":1.5},-7.25],"w":{"deep":{"er":-3}}}],"o":"\#(origin.hex)","s":1,"t":"018bcfe568000000"}"#
        let t = try WireCodec.decode(Array(canonical.utf8))
        #expect(String(decoding: WireCodec.encode(t), as: UTF8.self) == canonical)
    }

    @Test func unknownChangeAndMembersRelayByteForByteThroughStores() throws {
        let dir = TempDir("wire")
        defer { dir.remove() }
        let millis: UInt64 = 1_700_000_000_000
        let a = try Replica.make(in: dir, "a", millis: millis)
        let b = try Replica.make(in: dir, "b", millis: millis)
        let c = try Replica.make(in: dir, "c", millis: millis)
        let origin = node(7)
        let body = Array(futureTransactionJSON(origin: origin, clockHex: Timestamp(millis: millis - 5, counter: 0, node: origin).clockHex).utf8)

        let report = try a.store.apply([try ReceivedTransaction(body: body)])
        #expect(report.applied == 1)
        let held = try a.store.transactions(missingFrom: VersionVector()).transactions
        #expect(held.count == 1)
        #expect(held.first?.body == body, "the log keeps the origin's exact bytes")

        // Relay a → b → c, each through its log.
        try exchange(from: a.store, to: b.store)
        try exchange(from: b.store, to: c.store)
        for r in [b, c] {
            let relayed = try r.store.transactions(missingFrom: VersionVector()).transactions
            #expect(relayed.map(\.body) == [body], "\(r.name) relays the exact bytes")
            #expect(try r.store.vector() == VersionVector([origin: 1]))
            #expect(try r.store.record("stock", "sku-9")?.fields == ["name": .text("from the future")], "\(r.name) applies the known change")
        }
        #expect(try a.store.stateDigest() == c.store.stateDigest())

        // A local write after the unknown change is numbered and relayed normally.
        try c.store.commit([.put(collection: "stock", recordID: "sku-9", fields: [FieldAssignment("name", .text("now"))])])
        try exchange(from: c.store, to: a.store)
        #expect(try a.store.record("stock", "sku-9")?.fields["name"] == .text("now"))
        #expect(try a.store.conflicts().isEmpty)
    }

    /// JSON nested deeper than `WireCodec.maxJSONNesting` is refused before a parser sees it (a
    /// deep input would exhaust the recursive parsers' stack, and a fuzzer found one that makes
    /// Foundation's JSONDecoder trap); ordinary nesting of future change kinds still decodes.
    @Test func deeplyNestedJSONIsRefusedNotCrashedOn() throws {
        let origin = goldenOrigin.hex
        let deepMember = #"{"c":[],"o":"\#(origin)","s":1,"t":"018bcfe568000003","zz":"# + String(repeating: "[", count: 200_000)
        let trap = try fixture("../../SyncNodeTests/Fixtures/fuzz/json-deep-nesting-trap.json")
        let closedFirst = "]]]]" + String(repeating: "[", count: 100)
        for bad in [
            Array(deepMember.utf8), trap, Array((String(repeating: "{\"a\":", count: 65) + "1" + String(repeating: "}", count: 65)).utf8),
            Array(closedFirst.utf8),
        ] {
            #expect(throws: WireError.self) { try WireCodec.decode(bad) }
            #expect(throws: WireError.self) { try WireCodec.decodeMessage(PullRequest.self, from: bad) }
            #expect(throws: WireError.self) { try WireCodec.decodeMessage(VersionVector.self, from: bad) }
        }
        // Brackets inside strings do not count; a future change nested ten levels decodes.
        let nested = String(repeating: "[", count: 10) + String(repeating: "]", count: 10)
        let json =
            #"{"c":[{"k":"zap","n":\#(nested),"s":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"["}],"o":"\#(origin)","s":1,"t":"018bcfe568000003"}"#
        let t = try WireCodec.decode(Array(json.utf8))
        #expect(t.changes.count == 1)
    }

    @Test func malformedTransactionsAreRefused() {
        let origin = goldenOrigin.hex
        for bad in [
            #"{"c":[],"o":"\#(origin)","s":1}"#,
            #"{"c":[],"o":"xyz","s":1,"t":"018bcfe568000003"}"#,
            #"{"c":[],"o":"\#(origin)","s":1,"t":"018bcfe56800000"}"#,
            #"{"c":[{"c":"x","f":"y","k":"set","r":"z","v":[1]}],"o":"\#(origin)","s":1,"t":"018bcfe568000003"}"#,
            #"{"c":[{"b":"00","c":"x","f":"y","k":"set","r":"z","v":1}],"o":"\#(origin)","s":1,"t":"018bcfe568000003"}"#,
            #"{"c":[{"c":"x","f":"y","r":"z","v":1}],"o":"\#(origin)","s":1,"t":"018bcfe568000003"}"#,
            "not json",
        ] {
            #expect(throws: WireError.self, "\(bad)") { try WireCodec.decode(Array(bad.utf8)) }
        }
    }
}
