import CCompressZlib
import Foundation
import GRDB
import SyncProtocol
import Synchronization

// Storage layout (schema v4, see docs/DATA-MODEL.md): a record is ONE row whose `state` blob packs
// the live versions of its fields (the winner and any concurrent heads), with node ids and names
// interned to small integers. Versions that something replaced move to `field_history`; the log
// keeps each transaction's exact bytes, deflated when that saves space.

/// A timestamp's clock part as one integer: milliseconds << 16 | counter (time order).
extension Timestamp {
    var clock: UInt64 { millis << 16 | UInt64(counter) }

    init(clock: UInt64, node: NodeID) {
        self.init(millis: clock >> 16, counter: UInt16(truncatingIfNeeded: clock), node: node)
    }
}

/// Interned names (collections, fields) and node ids that every process of this node has committed.
/// Entries are never removed nor renumbered, so a committed entry stays valid for good.
final class InternCache: Sendable {
    private struct Tables {
        var nameIx: [ExactText: Int64] = [:]
        var names: [Int64: String] = [:]
        var nodeIx: [NodeID: Int64] = [:]
        var nodes: [Int64: NodeID] = [:]
    }
    private let tables = Mutex(Tables())

    func nameIx(_ name: String) -> Int64? { tables.withLock { $0.nameIx[ExactText(name)] } }
    func name(_ ix: Int64) -> String? { tables.withLock { $0.names[ix] } }
    func nodeIx(_ node: NodeID) -> Int64? { tables.withLock { $0.nodeIx[node] } }
    func node(_ ix: Int64) -> NodeID? { tables.withLock { $0.nodes[ix] } }

    func add(names: [ExactText: Int64], nodes: [NodeID: Int64]) {
        guard !names.isEmpty || !nodes.isEmpty else { return }
        tables.withLock { t in
            for (name, ix) in names {
                t.nameIx[name] = ix
                t.names[ix] = name.text
            }
            for (node, ix) in nodes {
                t.nodeIx[node] = ix
                t.nodes[ix] = node
            }
        }
    }
}

/// Interning within one database transaction. What it learns reaches the shared cache only through
/// `publish()`, which a writer calls after its transaction committed (a rolled-back number must not
/// be remembered: another process could give it to another name).
struct Interner {
    let shared: InternCache?
    private var names: [ExactText: Int64] = [:]
    private var nameTexts: [Int64: String] = [:]
    private var nodes: [NodeID: Int64] = [:]
    private var nodeIDs: [Int64: NodeID] = [:]

    /// Record states read during a local commit, kept until the commit's own write of that record
    /// takes them (so a record is read once, not twice). Only a local commit turns this on.
    var memo: [RecordKey: Data?]?

    /// Raw statements of the current write closure (nil outside one, and for readers). Set with
    /// `defer { interner.hot = nil }` inside the closure: the connection is only ours inside it.
    var hot: HotStatements?

    /// The write's raw statements; every path that applies transactions sets them.
    func statements() throws(SyncNodeError) -> HotStatements {
        guard let hot else { throw SyncNodeError(.storage, "internal error: a write ran without its prepared statements") }
        return hot
    }

    struct RecordKey: Hashable {
        var collection: Int64
        var recordID: ExactText
    }

    init(_ shared: InternCache?) {
        self.shared = shared
    }

    /// The names looked up last (a write repeats one collection and a few fields): checked
    /// before any hashing.
    private var recent: [(name: String, ix: Int64)] = []

    /// The number of `name`, assigning one if `create` (in a write transaction).
    mutating func nameIx(_ name: String, _ db: Database, create: Bool = true) throws -> Int64? {
        if let hit = recent.first(where: { $0.name.sameBytes(as: name) }) { return hit.ix }
        if let ix = names[ExactText(name)] ?? shared?.nameIx(name) {
            remember(name, ix)
            return ix
        }
        var ix = try Int64.fetchOne(db.cachedStatement(sql: "SELECT ix FROM name WHERE text = ?"), arguments: [name])
        if ix == nil && create {
            try db.cachedStatement(sql: "INSERT INTO name (text) VALUES (?)").execute(arguments: [name])
            ix = db.lastInsertedRowID
        }
        if let ix {
            names[ExactText(name)] = ix
            nameTexts[ix] = name
            remember(name, ix)
        }
        return ix
    }

    private mutating func remember(_ name: String, _ ix: Int64) {
        if recent.count >= 16 { recent.removeFirst() }
        recent.append((name, ix))
    }

    mutating func name(_ ix: Int64, _ db: Database) throws -> String {
        if let text = nameTexts[ix] ?? shared?.name(ix) { return text }
        guard let text = try String.fetchOne(db.cachedStatement(sql: "SELECT text FROM name WHERE ix = ?"), arguments: [ix]) else {
            throw SyncNodeError(
                .databaseCorrupt,
                "the database is damaged: it refers to name #\(ix), which it does not hold; restore the node from a backup or re-sync it")
        }
        names[ExactText(text)] = ix
        nameTexts[ix] = text
        return text
    }

    mutating func nodeIx(_ node: NodeID, _ db: Database, create: Bool = true) throws -> Int64? {
        if let ix = nodes[node] ?? shared?.nodeIx(node) { return ix }
        var ix = try Int64.fetchOne(db.cachedStatement(sql: "SELECT ix FROM node WHERE id = ?"), arguments: [Data(node.bytes)])
        if ix == nil && create {
            try db.cachedStatement(sql: "INSERT INTO node (id) VALUES (?)").execute(arguments: [Data(node.bytes)])
            ix = db.lastInsertedRowID
        }
        if let ix {
            nodes[node] = ix
            nodeIDs[ix] = node
        }
        return ix
    }

    mutating func node(_ ix: Int64, _ db: Database) throws -> NodeID {
        if let id = nodeIDs[ix] ?? shared?.node(ix) { return id }
        guard let data = try Data.fetchOne(db.cachedStatement(sql: "SELECT id FROM node WHERE ix = ?"), arguments: [ix]),
            let id = NodeID(bytes: data)
        else {
            throw SyncNodeError(
                .databaseCorrupt,
                "the database is damaged: it refers to node #\(ix), which it does not hold; restore the node from a backup or re-sync it")
        }
        nodes[id] = ix
        nodeIDs[ix] = id
        return id
    }

    /// Hands what this transaction learnt to the shared cache; call only once it committed.
    func publish() {
        shared?.add(names: names, nodes: nodes)
    }
}

/// Live versions by interned field name, kept sorted by name in an array: a record has a handful
/// of fields, so a linear search beats hashing (this sits on the hot write path).
struct FieldMap: Sequence {
    private(set) var entries: [(key: Int64, value: [LiveVersion])] = []

    subscript(key: Int64) -> [LiveVersion]? {
        get { entries.first { $0.key == key }?.value }
        set {
            let i = entries.firstIndex { $0.key >= key } ?? entries.endIndex
            let present = i < entries.endIndex && entries[i].key == key
            switch (present, newValue) {
            case (true, let value?): entries[i].value = value
            case (true, nil): entries.remove(at: i)
            case (false, let value?): entries.insert((key, value), at: i)
            case (false, nil): break
            }
        }
    }

    subscript(key: Int64, default value: [LiveVersion]) -> [LiveVersion] {
        get { self[key] ?? value }
        set { self[key] = newValue }
    }

    var values: [[LiveVersion]] { entries.map(\.value) }
    var count: Int { entries.count }

    func makeIterator() -> IndexingIterator<[(key: Int64, value: [LiveVersion])]> { entries.makeIterator() }
}

/// The live versions of one record, keyed by interned field name.
struct StoredRecord {
    var fields = FieldMap()
    /// Some version of this record named a version not held yet (see `field_ref`).
    var hasDanglingRefs = false

    var conflictCount: Int { fields.values.reduce(0) { $0 + (MergeRule.isConflicted($1) ? 1 : 0) } }
}

/// The binary form of `StoredRecord` (format 1):
/// `format` · `flags` · varint n · n × (clock u64 BE, node ix varint, seq varint) ·
/// varint fields · per field (name ix varint, varint live, per live (version index varint, head u8, value)).
/// A value is a tag (0 null, 1 int zig-zag varint, 2 real u64 BE bits, 3 text varint length + UTF-8).
enum RecordCodec {
    static let format: UInt8 = 1

    static func encode(_ record: StoredRecord, _ interner: inout Interner, _ db: Database) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        out.append(format)
        out.append(record.hasDanglingRefs ? 1 : 0)
        // The distinct versions, in order of first use (usually one or two: linear search).
        var versions: [LiveVersion] = []
        for (_, live) in record.fields {
            for v in live where !versions.contains(where: { $0.ts == v.ts }) { versions.append(v) }
        }
        ByteWriting.varint(UInt64(versions.count), into: &out)
        for v in versions {
            ByteWriting.fixed(v.ts.clock, into: &out)
            ByteWriting.varint(UInt64(try interner.nodeIx(v.ts.node, db)!), into: &out)
            ByteWriting.varint(v.seq, into: &out)
        }
        ByteWriting.varint(UInt64(record.fields.count), into: &out)
        for (name, live) in record.fields {
            ByteWriting.varint(UInt64(name), into: &out)
            ByteWriting.varint(UInt64(live.count), into: &out)
            for v in live {
                ByteWriting.varint(UInt64(versions.firstIndex { $0.ts == v.ts }!), into: &out)
                out.append(v.isHead ? 1 : 0)
                ByteWriting.value(v.value, into: &out)
            }
        }
        return out
    }

    /// The state of a record that one transaction creates (fields sorted by name, each with one
    /// head version, nothing replaced): the bytes `encode` gives for that record, without building it.
    static func encodeFresh(_ fields: [(name: Int64, value: Value)], clock: UInt64, node: Int64, seq: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(24 + fields.count * 12)
        out.append(format)
        out.append(0)
        ByteWriting.varint(1, into: &out)
        ByteWriting.fixed(clock, into: &out)
        ByteWriting.varint(UInt64(node), into: &out)
        ByteWriting.varint(seq, into: &out)
        ByteWriting.varint(UInt64(fields.count), into: &out)
        for field in fields {
            ByteWriting.varint(UInt64(field.name), into: &out)
            out.append(1)  // one live version,
            out.append(0)  // the transaction's,
            out.append(1)  // a head
            ByteWriting.value(field.value, into: &out)
        }
        return out
    }

    static func decode(_ bytes: Data, _ interner: inout Interner, _ db: Database) throws -> StoredRecord {
        try bytes.withUnsafeBytes { raw throws -> StoredRecord in
            var reader = ByteReader(bytes: raw.bindMemory(to: UInt8.self))
            guard try reader.byte() == format else { throw corrupt() }
            var record = StoredRecord()
            record.hasDanglingRefs = try reader.byte() & 1 != 0
            let versionCount = try reader.count()
            var versions: [(Timestamp, UInt64)] = []
            versions.reserveCapacity(versionCount)
            for _ in 0..<versionCount {
                let clock = try reader.fixed()
                let node = try interner.node(Int64(try reader.varint()), db)
                versions.append((Timestamp(clock: clock, node: node), try reader.varint()))
            }
            let fieldCount = try reader.count()
            for _ in 0..<fieldCount {
                let name = Int64(try reader.varint())
                let liveCount = try reader.count()
                var live: [LiveVersion] = []
                live.reserveCapacity(liveCount)
                for _ in 0..<liveCount {
                    let index = try reader.count()
                    guard index < versions.count else { throw corrupt() }
                    let isHead = try reader.byte() != 0
                    live.append(LiveVersion(ts: versions[index].0, seq: versions[index].1, value: try reader.value(), isHead: isHead))
                }
                record.fields[name] = live
            }
            return record
        }
    }

    static func corrupt() -> SyncNodeError {
        SyncNodeError(.databaseCorrupt, "a stored record is damaged (its packed state cannot be read); restore the node from a backup or re-sync it")
    }
}

private struct ByteReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var at = 0

    mutating func byte() throws(SyncNodeError) -> UInt8 {
        guard at < bytes.count else { throw RecordCodec.corrupt() }
        defer { at += 1 }
        return bytes[at]
    }

    mutating func varint() throws(SyncNodeError) -> UInt64 {
        guard let (value, _) = ByteReading.varint(bytes, &at) else { throw RecordCodec.corrupt() }
        return value
    }

    /// A varint used as a count or index: bounded by what is left, so damage cannot allocate wildly.
    mutating func count() throws(SyncNodeError) -> Int {
        let v = try varint()
        guard v <= UInt64(bytes.count) else { throw RecordCodec.corrupt() }
        return Int(v)
    }

    mutating func fixed() throws(SyncNodeError) -> UInt64 {
        guard let v = ByteReading.fixed(bytes, &at) else { throw RecordCodec.corrupt() }
        return v
    }

    mutating func value() throws(SyncNodeError) -> Value {
        switch try byte() {
        case 0: return .null
        case 1:
            let z = try varint()
            return .int(ByteWriting.unzigzag(z))
        case 2: return .real(Double(bitPattern: try fixed()))
        case 3:
            let n = try count()
            guard at + n <= bytes.count else { throw RecordCodec.corrupt() }
            defer { at += n }
            return .text(String(decoding: UnsafeBufferPointer(rebasing: bytes[at..<at + n]), as: UTF8.self))
        default: throw RecordCodec.corrupt()
        }
    }
}

/// zlib (deflate) for log bodies at rest. Streams are set up once and reset between bodies: setting
/// one up allocates up to 256 KiB and resetting clears its hash table, which cost more than
/// compressing a one-record body. Small bodies use a stream with a small window and hash table.
final class Deflate {
    /// Bodies shorter than this are stored as they are.
    static let threshold = 200
    /// Bodies shorter than this use the small stream.
    static let smallLimit = 4096

    private var small = z_stream()
    private var large = z_stream()
    private var smallReady = false
    private var largeReady = false

    init() {
        smallReady = CCompressZlib_deflateInit2(&small, 1, Z_DEFLATED, 10, 2, Z_DEFAULT_STRATEGY) == Z_OK
        largeReady = CCompressZlib_deflateInit2(&large, 1, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY) == Z_OK
    }

    deinit {
        if smallReady { deflateEnd(&small) }
        if largeReady { deflateEnd(&large) }
    }

    /// The deflated bytes (zlib format), or nil when deflating would not save space.
    func pack(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count >= Self.threshold else { return nil }
        if bytes.count < Self.smallLimit {
            return smallReady ? Self.pack(bytes, with: &small) : nil
        }
        return largeReady ? Self.pack(bytes, with: &large) : nil
    }

    private static func pack(_ bytes: [UInt8], with stream: inout z_stream) -> [UInt8]? {
        guard deflateReset(&stream) == Z_OK else { return nil }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))))
        let status = finish(&stream, input: bytes, output: &out) { deflate(&$0, Z_FINISH) }
        let size = Int(stream.total_out)
        guard status == Z_STREAM_END, size < bytes.count else { return nil }
        out.removeSubrange(size...)
        return out
    }
}

/// Runs one zlib call over all of `input` into `output`, the stream pointing at them only meanwhile.
private func finish(_ stream: inout z_stream, input: [UInt8], output: inout [UInt8], _ call: (inout z_stream) -> Int32) -> Int32 {
    var input = input
    return input.withUnsafeMutableBufferPointer { src in
        output.withUnsafeMutableBufferPointer { dst in
            stream.next_in = src.baseAddress
            stream.avail_in = uInt(src.count)
            stream.next_out = dst.baseAddress
            stream.avail_out = uInt(dst.count)
            defer {
                stream.next_in = nil
                stream.next_out = nil
            }
            return call(&stream)
        }
    }
}

/// Inflates log bodies; one stream reused for every body of a read.
final class Inflate {
    private var stream = z_stream()
    private var ready = false

    init() {
        ready = CCompressZlib_inflateInit2(&stream, 15) == Z_OK
    }

    deinit {
        if ready { inflateEnd(&stream) }
    }

    /// Inflates a body deflated by `Deflate.pack` to exactly `size` bytes.
    func unpack(_ bytes: Data, size: Int) throws(SyncNodeError) -> [UInt8] {
        guard size >= 0, size <= 1 << 30 else { throw SyncNodeError(.databaseCorrupt, "a stored transaction has an impossible size") }
        guard ready, inflateReset(&stream) == Z_OK else { throw SyncNodeError(.storage, "zlib could not be set up to read the log") }
        var out = [UInt8](repeating: 0, count: size)
        let status = finish(&stream, input: [UInt8](bytes), output: &out) { inflate(&$0, Z_FINISH) }
        guard status == Z_STREAM_END, Int(stream.total_out) == size else {
            throw SyncNodeError(.databaseCorrupt, "a stored transaction is damaged (it does not inflate); restore the node from a backup")
        }
        return out
    }
}

/// A transaction body as the log keeps it: deflated when that is smaller (`size` is then the
/// length of the original bytes), otherwise as it is.
struct LogBody: Sendable {
    let stored: [UInt8]
    let size: Int?

    static let empty = LogBody(stored: [], size: nil)

    private init(stored: [UInt8], size: Int?) {
        self.stored = stored
        self.size = size
    }

    init(_ body: [UInt8], _ deflater: borrowing Mutex<Deflate>) {
        if let packed = deflater.withLock({ $0.pack(body) }) {
            stored = packed
            size = body.count
        } else {
            stored = body
            size = nil
        }
    }
}
