import Foundation
import SyncNode
import SyncProtocol

/// The mirror's tables in PostgreSQL (docs/MIRROR.md describes each for analysts). Version 1.
/// Made when missing, never dropped: analysts' own views may stand on them. A database a newer
/// syncnode mirrored into is left alone, as is one another node mirrored into.
enum MirrorSchema {
    static let version = 1

    /// The advisory lock a mirror holds while it writes (one writer per database at a time).
    static let lockKey: Int64 = 0x5359_4E43_4D49_5252

    /// The statements that make the tables, each on its own (a prepared statement holds one).
    static let tables = [
        """
        CREATE TABLE IF NOT EXISTS syncnode_mirror (key text PRIMARY KEY, value text NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS mirror_vector (origin text PRIMARY KEY, seq bigint NOT NULL, chain text)
        """,
        """
        CREATE TABLE IF NOT EXISTS records (
        collection text NOT NULL, record_id text NOT NULL, fields jsonb NOT NULL, deleted boolean NOT NULL,
        updated timestamptz NOT NULL, updated_by text NOT NULL, conflicted_fields jsonb NOT NULL,
        PRIMARY KEY (collection, record_id))
        """,
        """
        CREATE TABLE IF NOT EXISTS ledger_entries (
        ledger text NOT NULL, entry_id text NOT NULL, origin text NOT NULL, kind text, time timestamptz NOT NULL, author text,
        fields jsonb NOT NULL, reversal boolean NOT NULL, cancelled boolean NOT NULL,
        PRIMARY KEY (ledger, entry_id, origin))
        """,
        """
        CREATE TABLE IF NOT EXISTS money_entries (
        ledger text NOT NULL, id text NOT NULL, origin text NOT NULL, kind text, county text, year bigint, project text, stage text,
        amount_fen bigint, placed boolean NOT NULL, cancelled boolean NOT NULL, counts boolean NOT NULL, reversal boolean NOT NULL,
        author text, time timestamptz NOT NULL,
        PRIMARY KEY (ledger, id, origin))
        """,
        """
        CREATE INDEX IF NOT EXISTS ledger_entries_cancelled ON ledger_entries (ledger) WHERE cancelled
        """,
        """
        CREATE TABLE IF NOT EXISTS nodes (node text PRIMARY KEY, label text NOT NULL)
        """,
        """
        CREATE INDEX IF NOT EXISTS money_entries_county_year ON money_entries (county, year) WHERE counts
        """,
        """
        CREATE INDEX IF NOT EXISTS money_entries_project ON money_entries (project) WHERE counts AND project IS NOT NULL
        """,
        """
        CREATE TABLE IF NOT EXISTS conflicts (
        collection text NOT NULL, record_id text NOT NULL, field text NOT NULL, winner jsonb, winner_time timestamptz NOT NULL,
        winner_node text NOT NULL, other jsonb, other_time timestamptz NOT NULL, other_node text NOT NULL)
        """,
    ]

    /// What of the plan the mirrored rows depend on: which ledgers hold money, and each kind's
    /// ledger (`money_entries` holds the money kinds' ledgers; `kind` comes from them). When it
    /// changes, every row is written again.
    static func planShape(_ plan: Programme) -> String {
        plan.kinds.compactMap { k in k.ledger.map { "\(k.id):\($0):\(k.money ?? "")" } }.sorted().joined(separator: ";")
    }

    /// The columns of the tables written from the node's reports (`funds`, `review`): the report's
    /// own columns, named in snake case; amounts in fen (`_fen`), percentages as numbers
    /// (50.00 for half), times as `timestamptz`.
    struct ReportColumn {
        var name: String
        var type: String
        var column: ReportTable.Column
    }

    static func columns(of table: ReportTable) -> [ReportColumn] {
        table.columns.map { column in
            let base = snakeCase(column.id)
            switch column.type {
            case .money: return ReportColumn(name: base + "_fen", type: "bigint", column: column)
            case .int: return ReportColumn(name: base, type: "bigint", column: column)
            case .percent: return ReportColumn(name: base, type: "numeric", column: column)
            case .time: return ReportColumn(name: base, type: "timestamptz", column: column)
            case .date: return ReportColumn(name: base, type: "date", column: column)
            case .text: return ReportColumn(name: base, type: "text", column: column)
            }
        }
    }

    /// `countyId` → `county_id`.
    static func snakeCase(_ id: String) -> String {
        var out = ""
        for ch in id {
            if ch.isUppercase {
                out += "_" + ch.lowercased()
            } else {
                out.append(ch)
            }
        }
        return out
    }

    /// The statements that make a report's table, or add the columns a newer report has.
    static func reportTable(_ name: String, _ columns: [ReportColumn]) -> [String] {
        ["CREATE TABLE IF NOT EXISTS \(name) ()"] + columns.map { "ALTER TABLE \(name) ADD COLUMN IF NOT EXISTS \($0.name) \($0.type)" }
    }

    /// A report's rows as JSON objects keyed by the table's column names; a number a cell cannot
    /// hold (a total beyond 64 bits, shown as words) is NULL.
    static func reportRows(_ table: ReportTable, _ columns: [ReportColumn]) throws -> String {
        let rows = table.rows.map { row in
            Dictionary(uniqueKeysWithValues: columns.enumerated().map { i, c in (c.name, i < row.count ? cell(row[i], c.column.type) : .null) })
        }
        return try MirrorRows.json(rows)
    }

    /// One cell as PostgreSQL reads it into its column (a percentage and a time as text it parses).
    enum Cell: Encodable {
        case null
        case int(Int64)
        case text(String)

        func encode(to encoder: any Encoder) throws {
            var single = encoder.singleValueContainer()
            switch self {
            case .null: try single.encodeNil()
            case .int(let n): try single.encode(n)
            case .text(let t): try single.encode(t)
            }
        }
    }

    private static func cell(_ cell: ReportTable.Cell, _ type: ReportTable.ColumnType) -> Cell {
        switch (cell, type) {
        case (.none, _): return .null
        case (.int(let n), .percent), (.money(let n), .percent):
            let sign = n < 0 ? "-" : ""
            let m = n.magnitude
            return .text("\(sign)\(m / 100).\(m % 100 < 10 ? "0" : "")\(m % 100)")
        case (.int(let n), .time), (.money(let n), .time): return n >= 0 ? .text(MirrorRows.time(UInt64(n))) : .null
        case (.int(let n), _), (.money(let n), _): return .int(n)
        case (.text, .money), (.text, .int), (.text, .percent), (.text, .time): return .null
        case (.text(let t), _): return .text(MirrorRows.pg(t))
        }
    }

    /// The statement that writes a report's rows from their JSON.
    static func insertReport(_ name: String, _ columns: [ReportColumn]) -> String {
        let names = columns.map(\.name).joined(separator: ", ")
        let defs = columns.map { "\($0.name) \($0.type)" }.joined(separator: ", ")
        return "INSERT INTO \(name) (\(names)) SELECT \(names) FROM json_to_recordset($1::json) AS r(\(defs))"
    }
}
