import Foundation
import GRDB
import SyncNode
import SyncProtocol

/// The plain-SQLite baseline: the same records in one ordinary 7-column table (text id primary key,
/// the 6 fields as columns), through the same library (GRDB `DatabasePool`, WAL,
/// `synchronous = NORMAL`, like the node), with prepared `INSERT ... ON CONFLICT DO UPDATE` upserts.
final class PlainTable {
    static let fileName = "plain.sqlite"
    static let upsertSQL = """
        INSERT INTO projects (id, name, county, stage, funds_fen, people, progress) VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, county = excluded.county, stage = excluded.stage,
        funds_fen = excluded.funds_fen, people = excluded.people, progress = excluded.progress
        """
    static let updateSQL = "INSERT INTO projects (id, people) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET people = excluded.people"

    let directory: URL
    private(set) var pool: DatabasePool?

    init(in directory: URL) throws {
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var config = Configuration()
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        let pool = try DatabasePool(path: directory.appendingPathComponent(Self.fileName).path, configuration: config)
        try pool.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS projects (
                        id TEXT PRIMARY KEY NOT NULL, name TEXT, county TEXT, stage TEXT, funds_fen INTEGER, people INTEGER, progress REAL)
                    """)
        }
        self.pool = pool
    }

    /// Upserts records `range` (the same values as `Workload.fields`), `perTransaction` rows per
    /// SQLite transaction, through one prepared statement.
    func upsert(_ range: Range<Int>, perTransaction: Int) throws {
        guard let pool else { throw BenchError("the plain table is closed") }
        var i = range.lowerBound
        while i < range.upperBound {
            let end = min(i + perTransaction, range.upperBound)
            let start = i
            try pool.write { db in
                let statement = try db.cachedStatement(sql: Self.upsertSQL)
                for r in start..<end {
                    let values: [DatabaseValue] = ["p\(r)".databaseValue] + Workload.fields(r).map { $0.value.plainDatabaseValue }
                    try statement.execute(arguments: StatementArguments(values))
                }
            }
            i = end
        }
    }

    /// The same one-field updates as `Workload.updateOneField`, as one-column upserts.
    func updateOneField(count: Int, of records: Int, perTransaction: Int) throws {
        guard let pool else { throw BenchError("the plain table is closed") }
        var i = 0
        while i < count {
            let end = min(i + perTransaction, count)
            let start = i
            try pool.write { db in
                let statement = try db.cachedStatement(sql: Self.updateSQL)
                for u in start..<end {
                    try statement.execute(arguments: ["p\((u * 7919) % records)", Int64(u)])
                }
            }
            i = end
        }
    }

    func rowCount() throws -> Int {
        guard let pool else { throw BenchError("the plain table is closed") }
        return try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM projects") ?? 0 }
    }

    func close() throws {
        try pool?.close()
        pool = nil
    }

    var file: URL { directory.appendingPathComponent(Self.fileName) }
}

extension Value {
    /// The value as the plain table stores it.
    var plainDatabaseValue: DatabaseValue {
        switch self {
        case .null: return .null
        case .int(let i): return i.databaseValue
        case .real(let d): return d.databaseValue
        case .text(let s): return s.databaseValue
        }
    }
}

/// On-disk size of a SQLite database after a full checkpoint, measured with the database closed
/// by its owner: the file is opened here, checkpointed with `wal_checkpoint(TRUNCATE)` and closed.
enum DiskUsage {
    struct Measure {
        /// Main file plus WAL (empty after the checkpoint), without the shared-memory index.
        var bytes: Int
        var pageSize: Int
        var pages: Int
        var freePages: Int
        /// Bytes per table or index (from the `dbstat` virtual table when SQLite has it).
        var objects: [(name: String, bytes: Int)]
    }

    static func measure(_ file: URL) throws -> Measure {
        let queue = try DatabaseQueue(path: file.path)
        let (pageSize, pages, free, objects) = try queue.writeWithoutTransaction { db -> (Int, Int, Int, [(String, Int)]) in
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0
            let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            let free = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
            let objects =
                (try? Row.fetchAll(db, sql: "SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC").map {
                    ($0["name"] as String, $0["bytes"] as Int)
                }) ?? []
            return (pageSize, pages, free, objects)
        }
        try queue.close()
        let manager = FileManager.default
        var bytes = 0
        for path in [file.path, file.path + "-wal"] {
            bytes += ((try? manager.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
        }
        return Measure(bytes: bytes, pageSize: pageSize, pages: pages, freePages: free, objects: objects)
    }
}
