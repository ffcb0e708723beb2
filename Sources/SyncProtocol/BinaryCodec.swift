/// Protocol version 2's transaction encoding: compact binary, written by every node from version 2
/// on (docs/PROTOCOL.md, "Transaction encoding (binary, protocol version 2)").
///
/// ```
/// transaction := 0xB2 origin(16) varint(seq) clock(8) names nodes varint(count) change*
/// names       := varint(n) (varint(len) utf8)*n      every collection, ledger and field name used
/// nodes       := varint(n) id(16)*n                  every node of a base or replaced timestamp
/// change      := 0x10|flags [varint(collection) text(recordID)] varint(field) value
///                [timestamp] [varint(k) timestamp*k]                        a field write
///              | 0x20 varint(ledger) text(entryID) varint(k) (varint(name) value)*k    a ledger entry
///              | 0x80..0xFF varint(len) byte*len                             a kind from the future
/// flags       := 1: the write starts another record (collection and record id follow; otherwise
///                   they are those of the previous change, which must be a write)
///                2: a base timestamp follows   4: replaced versions follow
/// value       := 0 null | 1 zigzag-varint | 2 real(8, IEEE 754) | 3 text
/// timestamp   := clock(8) varint(node index)      text := varint(len) utf8
/// ```
///
/// Fixed-width integers are big-endian; varints are LEB128 in their shortest form; a clock is 48
/// bits of milliseconds then 16 of counter. A ledger entry's fields are in byte order of their
/// names. The first byte (0xB2) can never start a JSON text, so a reader tells the two encodings
/// apart by it. The encoding of a transaction is unique: the decoder refuses anything the encoder
/// would not have written (overlong varints, names or nodes listed twice, out of order of first use
/// or never used, a record repeated needlessly), so equal transactions always have equal bytes. A
/// change of a future kind cannot refer to the tables (every listed name and node must be used by
/// the known changes).
enum BinaryCodec {
    static let tag: UInt8 = 0xB2

    private static let setKind: UInt8 = 0x10
    private static let newRecord: UInt8 = 1
    private static let hasBase: UInt8 = 2
    private static let hasResolves: UInt8 = 4
    private static let appendKind: UInt8 = 0x20
    /// Who made the transaction (`Change.author`): the first kind "from the future" of version 2's
    /// encoding, so a node of an earlier version keeps and relays it byte for byte.
    static let authorKind: UInt8 = 0x80

    // MARK: Encoding

    /// The transaction's bytes, or nil when it holds a change of a kind this version does not know
    /// (decoded from JSON, or a binary kind 0x80 and above: such a transaction is never re-encoded,
    /// nodes keep and relay its original bytes) or a number JSON and this encoding both refuse (an
    /// infinite or NaN real).
    static func encode(_ t: Transaction) -> [UInt8]? {
        var tables = Tables()
        var changes: [UInt8] = []
        changes.reserveCapacity(16 + t.changes.count * 24)
        var previous: (collection: String, recordID: String)?
        for change in t.changes {
            switch change {
            case .set(let w):
                var kind = setKind
                let sameRecord = previous.map { $0.recordID.sameBytes(as: w.recordID) && $0.collection.sameBytes(as: w.collection) } ?? false
                if !sameRecord { kind |= newRecord }
                if w.base != nil { kind |= hasBase }
                if !w.resolves.isEmpty { kind |= hasResolves }
                changes.append(kind)
                if !sameRecord {
                    tables.position = 0
                    varint(UInt64(tables.name(w.collection)), &changes)
                    text(w.recordID, &changes)
                    previous = (w.collection, w.recordID)
                }
                varint(UInt64(tables.name(w.field)), &changes)
                guard value(w.value, &changes) else { return nil }
                if let base = w.base { timestamp(base, &tables, &changes) }
                if !w.resolves.isEmpty {
                    varint(UInt64(w.resolves.count), &changes)
                    for ts in w.resolves { timestamp(ts, &tables, &changes) }
                }
            case .append(let e):
                previous = nil
                tables.position = 0
                changes.append(appendKind)
                varint(UInt64(tables.name(e.ledger)), &changes)
                text(e.entryID, &changes)
                varint(UInt64(e.fields.count), &changes)
                for name in e.fields.keys.sorted(by: { $0.bytesPrecede($1) }) {
                    varint(UInt64(tables.name(name)), &changes)
                    guard value(e.fields[name]!, &changes) else { return nil }
                }
            case .author(let name):
                previous = nil
                changes.append(authorKind)
                text(name, &changes)
            case .unknown:
                return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(40 + tables.byteCount + changes.count)
        out.append(tag)
        node(t.origin, &out)
        varint(t.seq, &out)
        clock(t.hlc, &out)
        varint(UInt64(tables.names.count), &out)
        for name in tables.names { text(name, &out) }
        varint(UInt64(tables.nodes.count), &out)
        for n in tables.nodes { node(n, &out) }
        varint(UInt64(t.changes.count), &out)
        out += changes
        return out
    }

    /// The name and node tables of one transaction, in order of first use.
    private struct Tables {
        var names: [String] = []
        var nodes: [NodeID] = []
        /// Where each name of the previous record was found: records of one collection usually
        /// name their fields in the same order, so the guess is nearly always right.
        var guesses: [Int] = []
        var position = 0
        var byteCount = 0

        mutating func name(_ name: String) -> Int {
            defer { position += 1 }
            if position < guesses.count, names[guesses[position]].sameBytes(as: name) { return guesses[position] }
            let index: Int
            if let found = names.firstIndex(where: { $0.sameBytes(as: name) }) {
                index = found
            } else {
                index = names.count
                names.append(name)
                byteCount += name.utf8.count + 2
            }
            if position < guesses.count {
                guesses[position] = index
            } else if guesses.count < 64 {
                guesses.append(index)
            }
            return index
        }

        mutating func node(_ id: NodeID) -> Int {
            if let found = nodes.firstIndex(of: id) { return found }
            nodes.append(id)
            byteCount += 16
            return nodes.count - 1
        }
    }

    private static func varint(_ v: UInt64, _ out: inout [UInt8]) { ByteWriting.varint(v, into: &out) }

    private static func text(_ s: String, _ out: inout [UInt8]) { ByteWriting.text(s, into: &out) }

    private static func node(_ id: NodeID, _ out: inout [UInt8]) {
        ByteWriting.fixed(id.high, into: &out)
        ByteWriting.fixed(id.low, into: &out)
    }

    private static func clock(_ ts: Timestamp, _ out: inout [UInt8]) {
        ByteWriting.fixed(ts.millis << 16 | UInt64(ts.counter), into: &out)
    }

    private static func timestamp(_ ts: Timestamp, _ tables: inout Tables, _ out: inout [UInt8]) {
        clock(ts, &out)
        varint(UInt64(tables.node(ts.node)), &out)
    }

    private static func value(_ v: Value, _ out: inout [UInt8]) -> Bool {
        guard v.isFiniteOrNotReal else { return false }
        ByteWriting.value(v, into: &out)
        return true
    }

    // MARK: Decoding

    static func decode(_ bytes: [UInt8]) throws(WireError) -> Transaction {
        try bytes.withUnsafeBufferPointer { buffer throws(WireError) in
            var r = Reader(bytes: buffer)
            return try r.transaction()
        }
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var i = 0
        /// The transaction's tables, listed in order of first use, and how many entries of each
        /// the changes used so far: each index the changes use is at most one past the highest
        /// used so far, and at the end every entry has been used.
        var names: [String] = []
        var nodes: [NodeID] = []
        var namesUsed = 0
        var nodesUsed = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        mutating func transaction() throws(WireError) -> Transaction {
            guard try byte() == BinaryCodec.tag else { throw .malformed("not a version 2 transaction") }
            let origin = try node()
            let seq = try varint()
            let hlc = try clock(origin)
            try tables()
            let changeCount = try count(of: "changes", atLeast: 2)
            guard changeCount <= Transaction.maxChanges else { throw .malformed("more than \(Transaction.maxChanges) changes") }
            var changes: [Change] = []
            changes.reserveCapacity(changeCount)
            var previous: (collection: String, recordID: String)?
            for _ in 0..<changeCount {
                let kind = try byte()
                switch kind {
                case BinaryCodec.setKind...(BinaryCodec.setKind | 7):
                    let write = try fieldWrite(kind, after: previous)
                    previous = (write.collection, write.recordID)
                    changes.append(.set(write))
                case BinaryCodec.appendKind:
                    previous = nil
                    changes.append(.append(try ledgerEntry()))
                case BinaryCodec.authorKind:
                    previous = nil
                    changes.append(.author(try text("an author's name")))
                case 0x81...0xFF:
                    previous = nil
                    let n = try count(of: "payload bytes", atLeast: 1)
                    let payload = bytes[i..<(i + n)]
                    i += n
                    let hex = payload.map { String($0, radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }.joined()
                    changes.append(.unknown(kind: "x" + String(kind, radix: 16), payload: .string(hex)))
                default:
                    throw .malformed("unknown change kind 0x\(String(kind, radix: 16)) (kinds from the future are 0x80 and above)")
                }
            }
            guard i == bytes.count else { throw .malformed("trailing bytes after the transaction") }
            guard namesUsed == names.count, nodesUsed == nodes.count else { throw .malformed("a listed name or node is never used") }
            return Transaction(origin: origin, seq: seq, hlc: hlc, changes: changes)
        }

        /// The tables of names and nodes, each entry once.
        private mutating func tables() throws(WireError) {
            let nameCount = try count(of: "names", atLeast: 1)
            names.reserveCapacity(min(nameCount, 256))
            var distinctNames = Set<ExactText>()
            for _ in 0..<nameCount {
                let name = try text("a name")
                guard distinctNames.insert(ExactText(name)).inserted else { throw .malformed("a name is listed twice") }
                names.append(name)
            }
            let nodeCount = try count(of: "nodes", atLeast: 16)
            nodes.reserveCapacity(min(nodeCount, 256))
            var distinctNodes = Set<NodeID>()
            for _ in 0..<nodeCount {
                let id = try node()
                guard distinctNodes.insert(id).inserted else { throw .malformed("a node is listed twice") }
                nodes.append(id)
            }
        }

        private mutating func name() throws(WireError) -> String {
            let k = try varint()
            guard k < UInt64(names.count) else { throw .malformed("a name index is out of range") }
            guard k <= UInt64(namesUsed) else { throw .malformed("names are not listed in order of first use") }
            if k == UInt64(namesUsed) { namesUsed += 1 }
            return names[Int(k)]
        }

        private mutating func timestamp() throws(WireError) -> Timestamp {
            let c = try fixed()
            let k = try varint()
            guard k < UInt64(nodes.count) else { throw .malformed("a node index is out of range") }
            guard k <= UInt64(nodesUsed) else { throw .malformed("nodes are not listed in order of first use") }
            if k == UInt64(nodesUsed) { nodesUsed += 1 }
            return Timestamp(millis: c >> 16, counter: UInt16(truncatingIfNeeded: c), node: nodes[Int(k)])
        }

        /// A field write of change kind `kind`: of a new record, or of the record the write before it wrote.
        private mutating func fieldWrite(_ kind: UInt8, after previous: (collection: String, recordID: String)?) throws(WireError) -> FieldWrite {
            let record: (collection: String, recordID: String)
            if kind & BinaryCodec.newRecord != 0 {
                record = (try name(), try text("a record id"))
                if let previous, previous.recordID.sameBytes(as: record.recordID), previous.collection.sameBytes(as: record.collection) {
                    throw .malformed("a write repeats the record of the write before it")
                }
            } else {
                guard let previous else { throw .malformed("a write continues a record but no write precedes it") }
                record = previous
            }
            let field = try name()
            let v = try value()
            let base = kind & BinaryCodec.hasBase != 0 ? try timestamp() : nil
            var resolves: [Timestamp] = []
            if kind & BinaryCodec.hasResolves != 0 {
                let n = try count(of: "replaced versions", atLeast: 9)
                guard n > 0 else { throw .malformed("an empty list of replaced versions is flagged") }
                resolves.reserveCapacity(min(n, 16))
                for _ in 0..<n { resolves.append(try timestamp()) }
            }
            return FieldWrite(collection: record.collection, recordID: record.recordID, field: field, value: v, base: base, resolves: resolves)
        }

        /// A ledger entry, its fields in byte order of their names.
        private mutating func ledgerEntry() throws(WireError) -> LedgerEntry {
            let ledger = try name()
            let entryID = try text("an entry id")
            let n = try count(of: "entry fields", atLeast: 2)
            var fields: [String: Value] = [:]
            fields.reserveCapacity(min(n, 64))
            var last: String?
            for _ in 0..<n {
                let field = try name()
                if let last, !last.bytesPrecede(field) { throw .malformed("entry fields are not in byte order of their names") }
                last = field
                fields[field] = try value()
            }
            return LedgerEntry(ledger: ledger, entryID: entryID, fields: fields)
        }

        mutating func byte() throws(WireError) -> UInt8 {
            guard i < bytes.count else { throw .malformed("truncated at byte \(i)") }
            defer { i += 1 }
            return bytes[i]
        }

        mutating func varint() throws(WireError) -> UInt64 {
            let start = i
            guard let (value, shortest) = ByteReading.varint(bytes, &i) else {
                throw .malformed("a number is cut short or overflows 64 bits at byte \(start)")
            }
            guard shortest else { throw .malformed("a number is not in its shortest form at byte \(start)") }
            return value
        }

        /// A count of items that take at least `atLeast` bytes each, checked against what is left
        /// so that no claimed count makes the reader reserve memory the bytes cannot fill.
        mutating func count(of what: String, atLeast: Int) throws(WireError) -> Int {
            let n = try varint()
            guard n <= UInt64(bytes.count - i) / UInt64(atLeast) else { throw .malformed("the count of \(what) exceeds the bytes left") }
            return Int(n)
        }

        mutating func fixed() throws(WireError) -> UInt64 {
            guard let v = ByteReading.fixed(bytes, &i) else { throw .malformed("truncated at byte \(i)") }
            return v
        }

        mutating func node() throws(WireError) -> NodeID {
            let high = try fixed()
            return NodeID(high: high, low: try fixed())
        }

        mutating func clock(_ node: NodeID) throws(WireError) -> Timestamp {
            let c = try fixed()
            return Timestamp(millis: c >> 16, counter: UInt16(truncatingIfNeeded: c), node: node)
        }

        mutating func text(_ what: String) throws(WireError) -> String {
            let n = try count(of: "bytes of \(what)", atLeast: 1)
            guard let s = String(validating: bytes[i..<(i + n)], as: UTF8.self) else { throw .malformed("\(what) is not valid UTF-8") }
            i += n
            return s
        }

        mutating func value() throws(WireError) -> Value {
            switch try byte() {
            case 0: return .null
            case 1:
                let z = try varint()
                return .int(ByteWriting.unzigzag(z))
            case 2:
                let d = Double(bitPattern: try fixed())
                guard d.isFinite else { throw .malformed("a real is infinite or NaN") }
                return .real(d)
            case 3: return .text(try text("a text value"))
            default: throw .malformed("unknown value type at byte \(i - 1)")
            }
        }
    }
}
