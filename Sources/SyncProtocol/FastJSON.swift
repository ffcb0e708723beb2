/// A hand-written encoder and decoder for the transaction format, because Foundation's Codable
/// JSON costs microseconds per member and transactions are the hot path of every write, apply and
/// sync. Output is byte-identical to `JSONEncoder` with sorted keys and unescaped slashes for every
/// value a transaction can hold (reals print as Swift's shortest round-trip form).
enum FastJSON {
    // MARK: Encoding

    static func encode(_ t: Transaction) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(64 + t.changes.count * 96)
        out += Array(#"{"c":["#.utf8)
        for (i, change) in t.changes.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            switch change {
            case .set(let w):
                out.append(UInt8(ascii: "{"))
                if let base = w.base {
                    key("b", &out)
                    string(base.hex, &out)
                    out.append(UInt8(ascii: ","))
                }
                key("c", &out)
                string(w.collection, &out)
                out += Array(#","f":"#.utf8)
                string(w.field, &out)
                out += Array(#","k":"set","r":"#.utf8)
                string(w.recordID, &out)
                out += Array(#","v":"#.utf8)
                guard value(w.value, &out) else { return nil }
                if !w.resolves.isEmpty {
                    out += Array(#","x":["#.utf8)
                    for (j, ts) in w.resolves.enumerated() {
                        if j > 0 { out.append(UInt8(ascii: ",")) }
                        string(ts.hex, &out)
                    }
                    out.append(UInt8(ascii: "]"))
                }
                out.append(UInt8(ascii: "}"))
            case .append(let e):
                out += Array(#"{"d":{"#.utf8)
                for (j, name) in e.fields.keys.sorted(by: sortedKeyOrder).enumerated() {
                    if j > 0 { out.append(UInt8(ascii: ",")) }
                    string(name, &out)
                    out.append(UInt8(ascii: ":"))
                    guard value(e.fields[name]!, &out) else { return nil }
                }
                out += Array(#"},"e":"#.utf8)
                string(e.entryID, &out)
                out += Array(#","k":"add","l":"#.utf8)
                string(e.ledger, &out)
                out.append(UInt8(ascii: "}"))
            case .unknown:
                return nil  // rare: the caller falls back to JSONEncoder
            }
        }
        out += Array(#"],"o":""#.utf8)
        out += Array(t.origin.hex.utf8)
        out += Array(#"","s":"#.utf8)
        out += Array(String(t.seq).utf8)
        out += Array(#","t":""#.utf8)
        out += Array(t.hlc.clockHex.utf8)
        out += Array(#""}"#.utf8)
        return out
    }

    /// JSONEncoder's `.sortedKeys` order: by UTF-8 bytes for the names transactions use.
    static func sortedKeyOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    private static func key(_ k: StaticString, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        out += UnsafeBufferPointer(start: k.utf8Start, count: k.utf8CodeUnitCount)
        out += Array(#"":"#.utf8)
    }

    private static func value(_ v: Value, _ out: inout [UInt8]) -> Bool {
        switch v {
        case .null: out += Array("null".utf8)
        case .int(let i): out += Array(String(i).utf8)
        case .text(let s): string(s, &out)
        case .real(let d):
            guard d.isFinite else { return false }
            out += Array(#"{"real":"#.utf8)
            out += Array("\(d)".utf8)
            out.append(UInt8(ascii: "}"))
        }
        return true
    }

    static func string(_ s: String, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x08: out += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x0C: out += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: Decoding

    /// Decodes a transaction; nil when the bytes hold something this fast path does not handle
    /// (a change of an unknown kind), in which case the caller uses the Codable path. Throws for
    /// malformed JSON or a wrong shape.
    static func decode(_ bytes: [UInt8]) throws(WireError) -> Transaction? {
        var p = Parser(bytes: bytes)
        let t = try p.transaction()
        p.skipSpace()
        guard p.i == bytes.count else { throw .malformed("trailing bytes after the transaction") }
        return t
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        mutating func expect(_ c: UInt8) throws(WireError) {
            skipSpace()
            guard i < bytes.count, bytes[i] == c else { throw .malformed("expected '\(Character(Unicode.Scalar(c)))' at byte \(i)") }
            i += 1
        }

        mutating func peek() -> UInt8? {
            skipSpace()
            return i < bytes.count ? bytes[i] : nil
        }

        /// Calls `body` for each member of an object, positioned at the member's value.
        mutating func object(_ body: (inout Parser, String) throws(WireError) -> Void) throws(WireError) {
            try expect(UInt8(ascii: "{"))
            if peek() == UInt8(ascii: "}") {
                i += 1
                return
            }
            while true {
                let name = try string()
                try expect(UInt8(ascii: ":"))
                try body(&self, name)
                skipSpace()
                guard i < bytes.count else { throw .malformed("unterminated object") }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                try expect(UInt8(ascii: "}"))
                return
            }
        }

        mutating func array(_ body: (inout Parser) throws(WireError) -> Void) throws(WireError) {
            try expect(UInt8(ascii: "["))
            if peek() == UInt8(ascii: "]") {
                i += 1
                return
            }
            while true {
                try body(&self)
                skipSpace()
                guard i < bytes.count else { throw .malformed("unterminated array") }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                try expect(UInt8(ascii: "]"))
                return
            }
        }

        mutating func string() throws(WireError) -> String {
            try expect(UInt8(ascii: "\""))
            let start = i
            // Fast path: no escapes.
            while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\") {
                guard bytes[i] >= 0x20 else { throw .malformed("control character in a string") }
                i += 1
            }
            guard i < bytes.count else { throw .malformed("unterminated string") }
            if bytes[i] == UInt8(ascii: "\"") {
                i += 1
                guard let s = String(validating: bytes[start..<(i - 1)], as: UTF8.self) else { throw .malformed("a string is not valid UTF-8") }
                return s
            }
            var out = Array(bytes[start..<i])
            while true {
                guard i < bytes.count else { throw .malformed("unterminated string") }
                let c = bytes[i]
                i += 1
                if c == UInt8(ascii: "\"") { break }
                if c < 0x20 { throw .malformed("control character in a string") }
                if c != UInt8(ascii: "\\") {
                    out.append(c)
                    continue
                }
                guard i < bytes.count else { throw .malformed("unterminated escape") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                            throw .malformed("unpaired surrogate in a string")
                        }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw .malformed("unpaired surrogate in a string") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw .malformed("invalid \\u escape") }
                    out += Array(String(Character(u)).utf8)
                default: throw .malformed("invalid escape in a string")
                }
            }
            guard let s = String(validating: out, as: UTF8.self) else { throw .malformed("a string is not valid UTF-8") }
            return s
        }

        private mutating func hex4() throws(WireError) -> UInt32 {
            guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16),
                bytes[i..<(i + 4)].allSatisfy({ Hex.isDigits(String(decoding: [$0], as: UTF8.self)) })
            else { throw .malformed("invalid \\u escape") }
            i += 4
            return v
        }

        /// A JSON number token as text.
        mutating func numberToken() throws(WireError) -> Substring {
            skipSpace()
            let start = i
            while i < bytes.count, (0x30...0x39).contains(bytes[i]) || [0x2D, 0x2B, 0x2E, 0x65, 0x45].contains(bytes[i]) { i += 1 }
            guard i > start else { throw .malformed("expected a number at byte \(start)") }
            return Substring(String(decoding: bytes[start..<i], as: UTF8.self))
        }

        mutating func integer() throws(WireError) -> Int64 {
            let token = try numberToken()
            guard let v = Int64(token) else { throw .malformed("'\(token.prefix(24))' is not an integer") }
            return v
        }

        mutating func literal(_ word: String) -> Bool {
            skipSpace()
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else { return false }
            i += w.count
            return true
        }

        mutating func value() throws(WireError) -> Value {
            switch peek() {
            case UInt8(ascii: "\"")?: return .text(try string())
            case UInt8(ascii: "n")?:
                guard literal("null") else { throw .malformed("invalid literal") }
                return .null
            case UInt8(ascii: "t")?:
                guard literal("true") else { throw .malformed("invalid literal") }
                return .int(1)
            case UInt8(ascii: "f")?:
                guard literal("false") else { throw .malformed("invalid literal") }
                return .int(0)
            case UInt8(ascii: "{")?:
                var real: Double?
                try object { (p: inout Parser, name: String) throws(WireError) in
                    guard name == "real" else { throw .malformed("a value object has only the member 'real'") }
                    let token = try p.numberToken()
                    guard let d = Double(token), d.isFinite else { throw .malformed("'real' is not a finite number") }
                    real = d
                }
                guard let real else { throw .malformed("a value object needs 'real'") }
                return .real(real)
            default:
                return .int(try integer())
            }
        }

        /// Skips any JSON value (unknown members).
        mutating func skipValue() throws(WireError) {
            switch peek() {
            case UInt8(ascii: "\"")?: _ = try string()
            case UInt8(ascii: "{")?: try object { (p: inout Parser, _: String) throws(WireError) in try p.skipValue() }
            case UInt8(ascii: "[")?: try array { (p: inout Parser) throws(WireError) in try p.skipValue() }
            case UInt8(ascii: "n")?, UInt8(ascii: "t")?, UInt8(ascii: "f")?:
                guard literal("null") || literal("true") || literal("false") else { throw .malformed("invalid literal") }
            default: _ = try numberToken()
            }
        }

        private struct UnknownKind: Error {}

        mutating func transaction() throws(WireError) -> Transaction? {
            var origin: NodeID?
            var seq: UInt64?
            var clock: String?
            var changes: [Change] = []
            var sawChanges = false
            var unknown = false
            try object { (p: inout Parser, name: String) throws(WireError) in
                switch name {
                case "o":
                    guard let id = NodeID(hex: try p.string()) else { throw .malformed("'o' is not a node id") }
                    origin = id
                case "s":
                    let v = try p.integer()
                    guard v >= 0 else { throw .malformed("'s' is negative") }
                    seq = UInt64(v)
                case "t": clock = try p.string()
                case "c":
                    sawChanges = true
                    try p.array { (p: inout Parser) throws(WireError) in
                        if let change = try p.change() { changes.append(change) } else { unknown = true }
                    }
                default: try p.skipValue()
                }
            }
            if unknown { return nil }
            guard let origin else { throw .malformed("missing member 'o'") }
            guard let seq else { throw .malformed("missing member 's'") }
            guard let clock else { throw .malformed("missing member 't'") }
            guard sawChanges else { throw .malformed("missing member 'c'") }
            guard let hlc = Timestamp(clockHex: clock, node: origin) else { throw .malformed("'t' is not a 16-digit clock") }
            return Transaction(origin: origin, seq: seq, hlc: hlc, changes: changes)
        }

        /// One change; nil for a kind this fast path leaves to the Codable decoder.
        mutating func change() throws(WireError) -> Change? {
            var kind: String?
            var strings: [String: String] = [:]
            var val: Value?
            var resolves: [Timestamp] = []
            var fields: [String: Value]?
            try object { (p: inout Parser, name: String) throws(WireError) in
                switch name {
                case "k": kind = try p.string()
                case "c", "r", "f", "b", "l", "e": strings[name] = try p.string()
                case "v": val = try p.value()
                case "x":
                    try p.array { (p: inout Parser) throws(WireError) in
                        guard let ts = Timestamp(hex: try p.string()) else { throw .malformed("a timestamp is 48 hex digits") }
                        resolves.append(ts)
                    }
                case "d":
                    var map: [String: Value] = [:]
                    try p.object { (p: inout Parser, field: String) throws(WireError) in map[field] = try p.value() }
                    fields = map
                default: try p.skipValue()
                }
            }
            switch kind {
            case "set"?:
                guard let c = strings["c"], let r = strings["r"], let f = strings["f"], let v = val else {
                    throw .malformed("a set change needs c, r, f and v")
                }
                var base: Timestamp?
                if let b = strings["b"] {
                    guard let ts = Timestamp(hex: b) else { throw .malformed("a timestamp is 48 hex digits") }
                    base = ts
                }
                return .set(FieldWrite(collection: c, recordID: r, field: f, value: v, base: base, resolves: resolves))
            case "add"?:
                guard let l = strings["l"], let e = strings["e"], let d = fields else { throw .malformed("an add change needs l, e and d") }
                return .append(LedgerEntry(ledger: l, entryID: e, fields: d))
            case nil:
                throw .malformed("missing member 'k'")
            default:
                return nil
            }
        }
    }
}
