import Foundation
import SyncNode
import SyncProtocol
import SyncWeb

/// Renders the node's data for people (aligned tables) and for scripts (stable JSON, documented in
/// docs/CLI.md). The CLI prints what these return.
public enum Presenter {
    // MARK: JSON

    /// Stable JSON text: keys sorted, UTF-8 unescaped, no trailing newline.
    public static func json(_ object: Any) -> String {
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    public static func jsonValue(_ value: Value) -> Any {
        switch value {
        case .null: return NSNull()
        case .int(let i): return NSNumber(value: i)
        case .real(let d): return NSNumber(value: d)
        case .text(let s): return s
        }
    }

    /// A money or count total: the number, or the words a report shows when it is beyond 64 bits.
    public static func total(_ total: Total) -> Any { total.int64.map { NSNumber(value: $0) } ?? (ReportTable.Cell.beyondRange as Any) }

    public static func fieldsObject(_ fields: [String: Value]) -> [String: Any] { fields.mapValues(jsonValue) }

    public static func recordObject(_ r: RecordView) -> [String: Any] {
        [
            "collection": r.collection, "id": r.recordID, "fields": fieldsObject(r.fields), "deleted": r.deleted,
            "updated": r.updated.hex, "conflicts": r.conflictedFields,
        ]
    }

    public static func historyObject(_ h: HistoryEntry, author: String? = nil) -> [String: Any] {
        var object: [String: Any] = [
            "field": h.field, "value": jsonValue(h.value), "ts": h.ts.hex, "node": h.ts.node.hex, "seq": h.seq,
            "time": isoTime(h.ts.millis), "current": h.isCurrent, "head": h.isHead,
        ]
        if let author { object["author"] = author }
        return object
    }

    public static func conflictObject(_ c: ConflictItem) -> [String: Any] {
        [
            "collection": c.collection, "id": c.recordID, "field": c.field,
            "winner": ["value": jsonValue(c.winnerValue), "ts": c.winnerTs.hex, "node": c.winnerTs.node.hex],
            "other": ["value": jsonValue(c.otherValue), "ts": c.otherTs.hex, "node": c.otherTs.node.hex],
        ]
    }

    public static func ledgerObject(_ e: LedgerRow, author: String? = nil) -> [String: Any] {
        var object: [String: Any] = [
            "ledger": e.ledger, "id": e.entryID, "ts": e.ts.hex, "node": e.ts.node.hex, "time": isoTime(e.ts.millis),
            "fields": fieldsObject(e.fields), "reversedBy": e.reversedBy, "counts": e.counts,
        ]
        if let why = e.invalidReversal { object["invalidReversal"] = why }
        if let author { object["author"] = author }
        return object
    }

    public static func refusalObject(_ r: Refusal) -> [String: Any] {
        ["origin": r.origin.hex, "seq": r.seq, "reason": r.reason, "refusedBy": r.refusedBy, "permanent": r.permanent ?? true]
    }

    public static func vectorObject(_ v: VersionVector) -> [String: Any] {
        Dictionary(uniqueKeysWithValues: v.entries.map { ($0.key.hex, NSNumber(value: $0.value)) })
    }

    // MARK: Tables

    public static func recordTable(_ r: RecordView) -> String {
        var table = TextTable(["field", "value"])
        for name in r.fields.keys.sorted() {
            table.add([name, r.fields[name]!.description + (r.conflictedFields.contains(name) ? "  (conflict)" : "")])
        }
        var out = table.render()
        if r.deleted { out = "(deleted)\n" + out }
        return out
    }

    public static func recordsTable(_ records: [RecordView]) -> String {
        let names = Set(records.flatMap(\.fields.keys)).sorted()
        var table = TextTable(["id"] + names)
        for r in records {
            table.add([r.recordID + (r.conflictedFields.isEmpty ? "" : " !")] + names.map { r.fields[$0]?.description ?? "" })
        }
        return table.render()
    }

    /// The node that recorded a change, and who at it when the transaction names them: `lintan-1（王芳）`.
    public static func who(_ ts: Timestamp, labels: [NodeID: String], authors: [Timestamp: String]) -> String {
        (labels[ts.node] ?? ts.node.short) + (authors[ts].map { "（\($0)）" } ?? "")
    }

    public static func historyTable(_ entries: [HistoryEntry], labels: [NodeID: String], authors: [Timestamp: String] = [:]) -> String {
        var table = TextTable(["time (\(localZone))", "node (who)", "seq", "field", "value", "state"])
        for h in entries {
            let state = h.isCurrent ? "current" : h.isConflict ? "conflict" : h.isHead ? "concurrent, same value" : "replaced"
            table.add([localTime(h.ts.millis), who(h.ts, labels: labels, authors: authors), String(h.seq), h.field, h.value.description, state])
        }
        return table.render()
    }

    public static func conflictsTable(_ items: [ConflictItem], labels: [NodeID: String]) -> String {
        var table = TextTable(["record", "field", "kept", "by", "other", "by"])
        for c in items {
            table.add([
                "\(c.collection)/\(c.recordID)", c.field, c.winnerValue.description, labels[c.winnerTs.node] ?? c.winnerTs.node.short,
                c.otherValue.description, labels[c.otherTs.node] ?? c.otherTs.node.short,
            ])
        }
        return table.render()
    }

    public static func ledgerTable(_ entries: [LedgerRow], labels: [NodeID: String], authors: [Timestamp: String] = [:]) -> String {
        let names = Set(entries.flatMap(\.fields.keys)).filter { !Names.isReservedEntryField($0) }.sorted()
        var table = TextTable(["id", "time (\(localZone))", "node (who)"] + names + ["note"])
        for e in entries {
            var note = ""
            if let target = e.fields[Names.reversesField] { note = "reverses \(target)" }
            if let why = e.invalidReversal { note = "not counted: \(why)" }
            if !e.reversedBy.isEmpty { note = "reversed by \(e.reversedBy.joined(separator: ", "))" }
            table.add(
                [e.entryID, localTime(e.ts.millis), who(e.ts, labels: labels, authors: authors)] + names.map { e.fields[$0]?.description ?? "" } + [
                    note
                ])
        }
        return table.render()
    }

    /// `2026-11-25 21:56:16` in UTC (JSON keeps UTC).
    public static func isoTime(_ millis: UInt64) -> String { UTCTime.text(millis) }

    /// `2026-11-26 05:56:16` in the local time zone (`TZ`), as tables for people show times.
    public static func localTime(_ millis: UInt64, format: String = "yyyy-MM-dd HH:mm:ss") -> String { LocalTime.text(millis, format: format) }

    /// The local time zone's abbreviation, for table headers.
    public static var localZone: String { TimeZone.current.abbreviation() ?? TimeZone.current.identifier }
}
