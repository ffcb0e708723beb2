import Foundation

/// The versioned encoding of transactions (docs/PROTOCOL.md).
///
/// Version 2 (this version) writes every transaction in the compact binary form of `BinaryCodec`.
/// It still reads version 1's JSON form, `{"o": origin, "s": seq, "t": clock, "c": [changes]}`
/// with keys sorted and no insignificant white space, which nodes kept in their logs before the
/// upgrade and relay unchanged. The first byte tells the forms apart (`0xB2` or `{`).
public enum WireCodec {
    /// Version 3: refused transactions travel as their signed originals (no refusal statements),
    /// revocation cuts at a sequence number, requests are authenticated before their body is read.
    /// The transaction encoding is version 2's.
    public static let protocolVersion = 3
    /// The oldest version whose messages and bundles are still read.
    public static let oldestReadableProtocolVersion = 2

    /// Encodes a transaction in the current form. The transaction must be well formed
    /// (`Transaction.problem` is nil). One holding a change of a kind this version does not know
    /// (decoded from JSON) keeps the JSON form.
    public static func encode(_ transaction: Transaction) -> [UInt8] {
        BinaryCodec.encode(transaction) ?? encodeJSON(transaction)
    }

    /// Encodes a transaction in version 1's JSON form (for tests, fixtures and tools).
    public static func encodeJSON(_ transaction: Transaction) -> [UInt8] {
        do {
            return Array(try encoder.encode(WireTransaction(transaction)))
        } catch {
            preconditionFailure("encoding a well-formed transaction failed: \(error)")
        }
    }

    /// Whether the bytes are in the binary form of version 2 (otherwise they are JSON).
    public static func isBinary(_ bytes: some Collection<UInt8>) -> Bool { bytes.first == BinaryCodec.tag }

    public static func decode(_ bytes: some Collection<UInt8>) throws(WireError) -> Transaction {
        let array = Array(bytes)
        if array.first == BinaryCodec.tag { return try BinaryCodec.decode(array) }
        try checkNesting(array)
        let data = Data(array)
        do {
            return try decoder.decode(WireTransaction.self, from: data).transaction
        } catch let error as WireError {
            throw error
        } catch let DecodingError.dataCorrupted(context) {
            throw WireError.malformed(context.debugDescription)
        } catch let DecodingError.keyNotFound(key, _) {
            throw WireError.malformed("missing member '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context) {
            throw WireError.malformed("wrong type at \(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)")
        } catch let DecodingError.valueNotFound(_, context) {
            throw WireError.malformed("missing value at \(context.codingPath.map(\.stringValue).joined(separator: "."))")
        } catch {
            throw WireError.malformed("not a transaction")
        }
    }

    /// Encodes any wire message (vectors, status) the same canonical way.
    public static func encodeMessage<T: Encodable>(_ value: T) throws -> [UInt8] { Array(try encoder.encode(value)) }

    public static func decodeMessage<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws(WireError) -> T {
        let array = Array(bytes)
        try checkNesting(array)
        do {
            return try decoder.decode(T.self, from: Data(array))
        } catch {
            throw WireError.malformed("not a valid \(T.self) message")
        }
    }

    /// Deepest nesting of arrays and objects accepted in JSON from a peer. Nothing this protocol
    /// sends nests more than a few levels (a change of a future kind may nest a little more).
    public static let maxJSONNesting = 64

    /// Refuses JSON nested deeper than `maxJSONNesting` before any parser sees it: the recursive
    /// parsers would exhaust the stack on a deep enough input, and Foundation's `JSONDecoder`
    /// traps, instead of throwing, while describing some inputs beyond its own limit of 512
    /// (found by scripts/fuzz-wire; `Fixtures/fuzz/json-deep-nesting-trap.json`).
    static func checkNesting(_ bytes: [UInt8]) throws(WireError) {
        var depth = 0
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maxJSONNesting { throw .malformed("JSON nested more than \(maxJSONNesting) levels deep") }
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth -= 1
                if depth < 0 { throw .malformed("a JSON bracket closes what was never opened") }
            default:
                break
            }
        }
    }

    private static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    private static var decoder: JSONDecoder { JSONDecoder() }
}

/// A message or transaction that could not be decoded.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    /// A batch, or a frame of one, that is not in the batch form (its words say which).
    case framing(String)

    public var description: String {
        switch self {
        case .malformed(let why): return "malformed transaction: \(why)"
        case .framing(let why): return why
        }
    }
}

struct WireTransaction: Codable {
    var o: NodeID
    var s: UInt64
    var t: String
    var c: [WireChange]

    init(_ t: Transaction) {
        self.o = t.origin
        self.s = t.seq
        self.t = t.hlc.clockHex
        self.c = t.changes.map(WireChange.init)
    }

    var transaction: Transaction {
        get throws(WireError) {
            guard let hlc = Timestamp(clockHex: t, node: o) else { throw .malformed("'t' is not a 16-digit clock") }
            return Transaction(origin: o, seq: s, hlc: hlc, changes: c.map(\.change))
        }
    }
}

struct WireChange: Codable {
    let change: Change

    init(_ change: Change) { self.change = change }

    private enum Key: String, CodingKey { case k, c, r, f, v, b, x, l, e, d, n }

    init(from decoder: any Decoder) throws {
        let keyed = try decoder.container(keyedBy: Key.self)
        let kind = try keyed.decode(String.self, forKey: .k)
        switch kind {
        case "set":
            func stamp(_ text: String) throws -> Timestamp {
                guard let ts = Timestamp(hex: text) else {
                    throw DecodingError.dataCorruptedError(forKey: .b, in: keyed, debugDescription: "a timestamp is 48 hex digits")
                }
                return ts
            }
            change = .set(
                FieldWrite(
                    collection: try keyed.decode(String.self, forKey: .c),
                    recordID: try keyed.decode(String.self, forKey: .r),
                    field: try keyed.decode(String.self, forKey: .f),
                    value: try keyed.decode(Value.self, forKey: .v),
                    base: try keyed.decodeIfPresent(String.self, forKey: .b).map(stamp),
                    resolves: try (keyed.decodeIfPresent([String].self, forKey: .x) ?? []).map(stamp)))
        case "add":
            change = .append(
                LedgerEntry(
                    ledger: try keyed.decode(String.self, forKey: .l),
                    entryID: try keyed.decode(String.self, forKey: .e),
                    fields: try keyed.decode([String: Value].self, forKey: .d)))
        case "by":
            change = .author(try keyed.decode(String.self, forKey: .n))
        default:
            change = .unknown(kind: kind, payload: try JSONValue(from: decoder))
        }
    }

    func encode(to encoder: any Encoder) throws {
        switch change {
        case .set(let w):
            var keyed = encoder.container(keyedBy: Key.self)
            try keyed.encode("set", forKey: .k)
            try keyed.encode(w.collection, forKey: .c)
            try keyed.encode(w.recordID, forKey: .r)
            try keyed.encode(w.field, forKey: .f)
            try keyed.encode(w.value, forKey: .v)
            try keyed.encodeIfPresent(w.base?.hex, forKey: .b)
            if !w.resolves.isEmpty { try keyed.encode(w.resolves.map(\.hex), forKey: .x) }
        case .append(let e):
            var keyed = encoder.container(keyedBy: Key.self)
            try keyed.encode("add", forKey: .k)
            try keyed.encode(e.ledger, forKey: .l)
            try keyed.encode(e.entryID, forKey: .e)
            try keyed.encode(e.fields, forKey: .d)
        case .author(let name):
            var keyed = encoder.container(keyedBy: Key.self)
            try keyed.encode("by", forKey: .k)
            try keyed.encode(name, forKey: .n)
        case .unknown(_, let payload):
            try payload.encode(to: encoder)
        }
    }
}
