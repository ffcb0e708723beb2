import Foundation
import SyncNode
import SyncProtocol

/// The rows a mirror writes: the entries as `COPY` text, the rest as the JSON documents
/// PostgreSQL reads them from (`json_to_recordset`): one bound parameter per statement whatever the number of rows, NULL
/// where the node holds nothing, every integer exact.
enum MirrorRows {
    /// Text as PostgreSQL can hold it: its text and jsonb types cannot hold NUL, which becomes
    /// U+FFFD (the replacement character); everything else is kept as it is.
    static func pg(_ text: String) -> String {
        text.utf8.contains(0) ? text.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : text
    }

    static func pg(_ text: String?) -> String? { text.map { pg($0) } }

    static func pg(_ fields: [String: Value]) -> [String: PlainValue] {
        Dictionary(fields.map { (pg($0.key), PlainValue($0.value)) }, uniquingKeysWith: { a, _ in a })
    }

    /// A field's value as analysts read it in `jsonb`: null, an integer, a number or text.
    struct PlainValue: Encodable {
        var value: Value
        init(_ value: Value) { self.value = value }

        func encode(to encoder: any Encoder) throws {
            var single = encoder.singleValueContainer()
            switch value {
            case .null: try single.encodeNil()
            case .int(let i): try single.encode(i)
            case .real(let d) where d.isFinite: try single.encode(d)
            case .real: try single.encodeNil()
            case .text(let s): try single.encode(pg(s))
            }
        }
    }

    struct Record: Encodable {
        var collection: String
        var record_id: String
        var fields: [String: PlainValue]
        var deleted: Bool
        var updated: String
        var updated_by: String
        var conflicted_fields: [String]
    }

    struct Entry {
        var ledger: String
        var entry_id: String
        var origin: String
        var kind: String?
        var time: String
        var author: String?
        var fields: [String: PlainValue]
        var reversal: Bool
        var cancelled: Bool
    }

    struct Money {
        var ledger: String
        var id: String
        var origin: String
        var kind: String?
        var county: String?
        var year: Int64?
        var project: String?
        var stage: String?
        var amount_fen: Int64?
        var placed: Bool
        var cancelled: Bool
        var counts: Bool
        var reversal: Bool
        var author: String?
        var time: String
    }

    struct Cancellation: Encodable {
        var entry_id: String
        var origin: String
        var cancelled: Bool
    }

    struct Conflict: Encodable {
        var collection: String
        var record_id: String
        var field: String
        var winner: PlainValue
        var winner_time: String
        var winner_node: String
        var other: PlainValue
        var other_time: String
        var other_node: String
    }

    static let ledgerColumns = ["ledger", "entry_id", "origin", "kind", "time", "author", "fields", "reversal", "cancelled"]
    static let moneyColumns = [
        "ledger", "id", "origin", "kind", "county", "year", "project", "stage", "amount_fen", "placed", "cancelled", "counts", "reversal",
        "author", "time",
    ]

    /// Ledger entries as `COPY` text rows, in `ledgerColumns`' order.
    static func copyText(_ rows: [Entry]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        var out = ""
        for r in rows {
            let fields = String(decoding: try encoder.encode(r.fields), as: UTF8.self)
            out += [r.ledger, r.entry_id, r.origin, r.kind, r.time, r.author, fields, bool(r.reversal), bool(r.cancelled)]
                .map(copyField).joined(separator: "\t")
            out += "\n"
        }
        return out
    }

    /// Money entries as `COPY` text rows, in `moneyColumns`' order.
    static func copyText(_ rows: [Money]) -> String {
        var out = ""
        for r in rows {
            let cells: [String?] = [
                r.ledger, r.id, r.origin, r.kind, r.county, r.year.map { String($0) }, r.project, r.stage, r.amount_fen.map { String($0) },
                bool(r.placed), bool(r.cancelled), bool(r.counts), bool(r.reversal), r.author, r.time,
            ]
            out += cells.map(copyField).joined(separator: "\t")
            out += "\n"
        }
        return out
    }

    private static func bool(_ b: Bool) -> String { b ? "t" : "f" }

    static func json(_ rows: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return String(decoding: try encoder.encode(rows), as: UTF8.self)
    }

    /// A clock's wall time as PostgreSQL reads a `timestamptz` (UTC, milliseconds).
    static func time(_ millis: UInt64) -> String {
        let seconds = millis / 1000
        let date = Date(timeIntervalSince1970: TimeInterval(seconds))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ n: Int?) -> String { String(format: "%02d", n ?? 0) }
        return
            "\(c.year ?? 1970)-\(two(c.month))-\(two(c.day))T\(two(c.hour)):\(two(c.minute)):\(two(c.second)).\(String(format: "%03d", Int(millis % 1000)))Z"
    }

    static func record(_ view: RecordView) -> Record {
        Record(
            collection: pg(view.collection), record_id: pg(view.recordID), fields: pg(view.fields), deleted: view.deleted,
            updated: time(view.updated.millis), updated_by: view.updated.node.hex, conflicted_fields: view.conflictedFields.map { pg($0) })
    }

    static func entry(_ e: MirrorEntry, cancelled: Bool) -> Entry {
        Entry(
            ledger: pg(e.ledger), entry_id: pg(e.entryID), origin: e.origin.hex, kind: pg(e.kind), time: time(e.ts.millis), author: pg(e.author),
            fields: pg(e.fields), reversal: e.isReversal, cancelled: cancelled)
    }

    /// A money entry's typed row: where it counts by the money model's definitions (county, budget
    /// year, project, stage, amount), whether it has a place in the totals at all, and whether it
    /// counts now that reversals are judged.
    static func money(_ e: MirrorEntry, cancelled: Bool) -> Money {
        let booked = MoneyModel.booking(e.fields)
        return Money(
            ledger: pg(e.ledger), id: pg(e.entryID), origin: e.origin.hex, kind: pg(e.kind), county: pg(booked.county),
            year: booked.year.map(Int64.init), project: pg(booked.project), stage: pg(booked.stage), amount_fen: MoneyModel.amount(e.fields),
            placed: e.placement != nil,
            cancelled: cancelled, counts: e.counts(cancelled: cancelled), reversal: e.isReversal, author: pg(e.author), time: time(e.ts.millis))
    }

    static func conflict(_ c: ConflictItem, labels: [NodeID: String]) -> Conflict {
        Conflict(
            collection: pg(c.collection), record_id: pg(c.recordID), field: pg(c.field), winner: PlainValue(c.winnerValue),
            winner_time: time(c.winnerTs.millis),
            winner_node: labels[c.winnerTs.node] ?? c.winnerTs.node.hex, other: PlainValue(c.otherValue), other_time: time(c.otherTs.millis),
            other_node: labels[c.otherTs.node] ?? c.otherTs.node.hex)
    }
}
