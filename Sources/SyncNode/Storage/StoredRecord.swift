import Foundation
import GRDB
import SyncProtocol

// Storage layout (schema v4, see docs/DATA-MODEL.md): a record is ONE row whose `state` blob packs
// the live versions of its fields (the winner and any concurrent heads), with node ids and names
// interned to small integers. Versions that something replaced move to `field_history`; the log
// keeps each transaction's exact bytes, deflated when that saves space.

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
    /// Some version of this record named a version not held yet (see `dangling_ref`).
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
