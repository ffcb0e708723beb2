import Foundation
import GRDB
import SyncProtocol

/// Who handed this node a held transaction: the authenticated node that pushed it, or a pull or a
/// bundle (nothing authenticates who made those; together they count as one sender).
public enum HeldSender: Hashable, Sendable {
    case pulled
    case node(NodeID)

    init(_ via: Data?) {
        if let via, let node = NodeID(bytes: via) { self = .node(node) } else { self = .pulled }
    }

    /// The `via` column's value.
    var via: Data? {
        if case .node(let node) = self { return Data(node.bytes) }
        return nil
    }
}

/// What one sender left waiting here of one origin's work: the lines of `held list`, and what
/// `held drop` and the age limit dropped.
public struct HeldWork: Sendable, Equatable {
    public var sender: HeldSender
    public var origin: NodeID
    public var transactions: Int
    /// Their encoded bytes, as counted against the sender's share.
    public var bytes: Int
    public var firstSeq: UInt64
    public var lastSeq: UInt64
    /// When the first and the last of them arrived here (ms since 1970).
    public var oldest: UInt64
    public var newest: UInt64
}

extension Store {
    /// The held work, per sender and origin.
    public func heldWork() throws(SyncNodeError) -> [HeldWork] {
        try read { db in try Self.heldWork(db, where: "1", arguments: []) }
    }

    /// Drops held work: `sender`'s (any sender's when nil) of `origin` (any origin's when nil),
    /// and of each origin touched every later transaction held, whoever sent it (held work of an
    /// origin runs without a gap from the vector: what follows a dropped transaction could never
    /// be applied). The vector is not touched, so the dropped work is asked for again: a pull asks
    /// from the vector, and a sender offers what this node's vector lacks. Returns what was dropped.
    public func dropHeldWork(sender: HeldSender?, origin: NodeID?) throws(SyncNodeError) -> [HeldWork] {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let sender {
            conditions.append("via IS ?")
            arguments += [sender.via]
        }
        if let origin {
            conditions.append("origin = ?")
            arguments += [Data(origin.bytes)]
        }
        let condition = conditions.isEmpty ? "1" : conditions.joined(separator: " AND ")
        return try StorageErrors.map { try pool.write { db in try Self.dropHeld(db, where: condition, arguments: arguments) } }
    }

    /// Drops the held work that arrived more than `limits.maxHeldAgeMillis` ago (and what follows
    /// it of its origin, see `dropHeldWork`). One indexed read when nothing is that old; runs at
    /// open, at every release of held work and at every apply. Returns what was dropped.
    @discardableResult
    public func expireHeldWork() throws(SyncNodeError) -> [HeldWork] {
        let now = clock.nowMillis()
        guard now > limits.maxHeldAgeMillis else { return [] }
        let cutoff = Int64(clamping: now - limits.maxHeldAgeMillis)
        let due = try read { db in
            try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM held WHERE received < ?)"), arguments: [cutoff]) ?? false
        }
        guard due else { return [] }
        return try StorageErrors.map { try pool.write { db in try Self.dropHeld(db, where: "received < ?", arguments: [cutoff]) } }
    }

    private static func dropHeld(_ db: Database, where condition: String, arguments: StatementArguments) throws -> [HeldWork] {
        let starts = try Row.fetchAll(db, sql: "SELECT origin, min(seq) AS seq FROM held WHERE \(condition) GROUP BY origin", arguments: arguments)
        var dropped: [HeldWork] = []
        for row in starts {
            let tail: StatementArguments = [row["origin"] as Data, row["seq"] as Int64]
            dropped += try heldWork(db, where: "origin = ? AND seq >= ?", arguments: tail)
            try db.execute(sql: "DELETE FROM held WHERE origin = ? AND seq >= ?", arguments: tail)
        }
        return dropped
    }

    private static func heldWork(_ db: Database, where condition: String, arguments: StatementArguments) throws -> [HeldWork] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT via, origin, count(*) AS n, coalesce(sum(length(body)), 0) AS bytes, min(seq) AS first, max(seq) AS last,
                    min(received) AS oldest, max(received) AS newest
                FROM held WHERE \(condition) GROUP BY via, origin ORDER BY via, origin
                """, arguments: arguments
        ).compactMap { row in
            guard let origin = NodeID(bytes: row["origin"] as Data) else { return nil }
            return HeldWork(
                sender: HeldSender(row["via"] as Data?), origin: origin, transactions: row["n"], bytes: row["bytes"],
                firstSeq: UInt64(row["first"] as Int64), lastSeq: UInt64(row["last"] as Int64), oldest: UInt64(row["oldest"] as Int64),
                newest: UInt64(row["newest"] as Int64))
        }
    }
}
