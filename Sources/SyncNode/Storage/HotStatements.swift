import Foundation
import GRDB
import GRDBSQLite

/// The few statements a write runs per record or per transaction, bound and stepped through
/// SQLite's C interface. GRDB's general statement path (argument arrays, value conversion, cursors)
/// cost about a tenth of remote-apply time; everything else stays on GRDB.
///
/// The statements themselves come from GRDB's statement cache of the connection, so they are
/// prepared once per connection (not per write) and finalized by GRDB when it closes the
/// connection. Lives for one GRDB write closure.
final class HotStatements {
    private let db: Database
    private let connection: SQLiteConnection
    private var selectState: OpaquePointer?
    private var insertRecord: OpaquePointer?
    private var updateRecord: OpaquePointer?
    private var insertLog: OpaquePointer?
    /// GRDB's statements behind the raw pointers, held so that GRDB cannot finalize one (it does
    /// when a statement leaves its cache) while this write uses it.
    private var held: [Statement] = []

    init(_ db: Database) {
        self.db = db
        connection = db.sqliteConnection!
    }

    /// The packed state of a record, or nil if it has no row.
    func state(collection: Int64, recordID: String) throws -> Data? {
        let s = try prepared(&selectState, "SELECT state FROM record WHERE collection = ? AND record_id = ?")
        defer { finish(s) }
        sqlite3_bind_int64(s, 1, collection)
        try bind(s, 2, recordID)
        switch sqlite3_step(s) {
        case SQLITE_ROW:
            // The pointer first, then the size (the order SQLite documents).
            let bytes = sqlite3_column_blob(s, 0)
            let count = Int(sqlite3_column_bytes(s, 0))
            guard count > 0, let bytes else { return Data() }
            return Data(bytes: bytes, count: count)
        case SQLITE_DONE:
            return nil
        case let code:
            throw failure(code)
        }
    }

    func writeRecord(collection: Int64, recordID: String, state: [UInt8], conflicts: Int, exists: Bool) throws {
        let s =
            exists
            ? try prepared(&updateRecord, "UPDATE record SET state = ?1, conflicts = ?2 WHERE collection = ?3 AND record_id = ?4")
            : try prepared(&insertRecord, "INSERT INTO record (state, conflicts, collection, record_id) VALUES (?1, ?2, ?3, ?4)")
        defer { finish(s) }
        try bind(s, 1, state)
        sqlite3_bind_int64(s, 2, Int64(conflicts))
        sqlite3_bind_int64(s, 3, collection)
        try bind(s, 4, recordID)
        try done(s)
    }

    func appendLog(
        origin: Int64, seq: UInt64, hlc: UInt64, body: [UInt8], size: Int?, signature: [UInt8], refused: String?, received: UInt64, chain: Data
    ) throws {
        let s = try prepared(
            &insertLog, "INSERT INTO log (origin, seq, hlc, body, size, sig, refused, received, chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        defer { finish(s) }
        sqlite3_bind_int64(s, 1, origin)
        sqlite3_bind_int64(s, 2, Int64(seq))
        sqlite3_bind_int64(s, 3, Int64(bitPattern: hlc))
        try bind(s, 4, body)
        if let size { sqlite3_bind_int64(s, 5, Int64(size)) } else { sqlite3_bind_null(s, 5) }
        try bind(s, 6, signature)
        if let refused { try bind(s, 7, refused) } else { sqlite3_bind_null(s, 7) }
        sqlite3_bind_int64(s, 8, Int64(received))
        try bind(s, 9, [UInt8](chain))
        try done(s)
    }

    private func prepared(_ slot: inout OpaquePointer?, _ sql: String) throws -> OpaquePointer {
        if let statement = slot { return statement }
        let cached = try db.cachedStatement(sql: sql)
        held.append(cached)
        let statement = cached.sqliteStatement
        // GRDB may have used it last (the same text): start from a clean state. Every use below
        // resets it and clears its bindings again, so GRDB finds it as it would leave it.
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        slot = statement
        return statement
    }

    /// Resets a statement after use and clears its bindings (SQLite frees its copies of the
    /// bound blobs, and GRDB, which shares the statement, never finds stale arguments bound).
    private func finish(_ s: OpaquePointer) {
        sqlite3_reset(s)
        sqlite3_clear_bindings(s)
    }

    private func bind(_ s: OpaquePointer, _ index: Int32, _ text: String) throws {
        var text = text
        let code = text.withUTF8 { utf8 -> Int32 in
            guard let base = utf8.baseAddress, !utf8.isEmpty else { return sqlite3_bind_text(s, index, "", 0, transient) }
            // SQLITE_TRANSIENT: SQLite copies the bytes before this returns.
            return UnsafeRawPointer(base).withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                sqlite3_bind_text(s, index, $0, Int32(utf8.count), transient)
            }
        }
        guard code == SQLITE_OK else { throw failure(code) }
    }

    private func bind(_ s: OpaquePointer, _ index: Int32, _ bytes: [UInt8]) throws {
        // A zero-length blob still binds a BLOB (not NULL): the columns are NOT NULL.
        let code = bytes.withUnsafeBytes { raw in
            sqlite3_bind_blob(s, index, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(raw.count), transient)
        }
        guard code == SQLITE_OK else { throw failure(code) }
    }

    private func done(_ s: OpaquePointer) throws {
        let code = sqlite3_step(s)
        guard code == SQLITE_DONE else { throw failure(code) }
    }

    private func failure(_ code: Int32) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(connection)))
    }
}

private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
