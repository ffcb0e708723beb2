import Foundation
import GRDB
import SyncProtocol

/// The two tables of work this node has received but not applied (migration v3, `via` from v5),
/// never replicated: `held`, the transactions waiting for the registry to learn their origin, and
/// `rejection`, the refusals known here (this node's own work refused elsewhere, and what this
/// node refused). Their one owner: every read and write of the two tables is here, through the two
/// record types below; the apply path, fork repair, recovery, `held` and the metrics call these.

/// A row of `held`.
struct HeldRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "held"
    var origin: Data
    var seq: Int64
    var body: Data
    var sig: Data
    /// When it arrived here (ms since 1970).
    var received: Int64
    /// The authenticated node that pushed it; nil for a pull or a bundle.
    var via: Data?

    init(_ item: ReceivedTransaction, via: NodeID?, at now: UInt64) {
        origin = Data(item.transaction.origin.bytes)
        seq = Int64(item.transaction.seq)
        body = Data(item.body)
        sig = Data(item.signature)
        received = Int64(clamping: now)
        self.via = via.map { Data($0.bytes) }
    }

    /// The transaction as it arrived: bytes and signature.
    func transaction() throws -> ReceivedTransaction {
        var item = try ReceivedTransaction(body: [UInt8](body))
        item.signature = [UInt8](sig)
        return item
    }

    /// Keeps `item` (a later copy of the same number replaces an earlier one).
    static func hold(_ db: Database, _ item: ReceivedTransaction, via: NodeID?, at now: UInt64) throws {
        try HeldRow(item, via: via, at: now).insert(db, onConflict: .replace)
    }

    /// Whether anything is held: when nothing is, the apply path skips every other question.
    static func any(_ db: Database) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM held)") ?? true
    }

    /// Whether anything held arrived before `cutoff`.
    static func anyOlder(_ db: Database, than cutoff: Int64) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM held WHERE received < ?)"), arguments: [cutoff]) ?? false
    }

    static func count(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT count(*) FROM held") ?? 0
    }

    /// Whether this very copy (bytes and signature) of the transaction is held already.
    static func holds(_ db: Database, _ item: ReceivedTransaction) throws -> Bool {
        try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT body = ? AND sig = ? FROM held WHERE origin = ? AND seq = ?"),
            arguments: [Data(item.body), Data(item.signature), Data(item.transaction.origin.bytes), Int64(item.transaction.seq)]) ?? false
    }

    /// The last number of `origin` held, if any.
    static func lastSeq(_ db: Database, of origin: NodeID) throws -> Int64? {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT max(seq) FROM held WHERE origin = ?"), arguments: [Data(origin.bytes)])
    }

    /// The last number held of each origin.
    static func lastSeqs(_ db: Database) throws -> [(NodeID, UInt64)] {
        try Row.fetchAll(db, sql: "SELECT origin, max(seq) AS seq FROM held GROUP BY origin").compactMap { row in
            NodeID(bytes: row["origin"] as Data).map { ($0, UInt64(row["seq"] as Int64)) }
        }
    }

    /// The origins with work held here.
    static func origins(_ db: Database) throws -> [NodeID] {
        try Data.fetchAll(db, sql: "SELECT DISTINCT origin FROM held").compactMap { NodeID(bytes: $0) }
    }

    /// What is held of `origin`, in order.
    static func all(_ db: Database, of origin: NodeID) throws -> [HeldRow] {
        try HeldRow.fetchAll(db.cachedStatement(sql: "SELECT * FROM held WHERE origin = ? ORDER BY seq"), arguments: [Data(origin.bytes)])
    }

    /// Every held transaction, by origin and number.
    static func list(_ db: Database) throws -> [HeldTransaction] {
        try Row.fetchAll(db, sql: "SELECT origin, seq, received FROM held ORDER BY origin, seq").compactMap { row in
            guard let origin = NodeID(bytes: row["origin"] as Data) else { return nil }
            return HeldTransaction(origin: origin, seq: UInt64(row["seq"] as Int64), received: UInt64(row["received"] as Int64))
        }
    }

    /// Forgets one transaction (applied, or refused).
    static func remove(_ db: Database, _ origin: NodeID, _ seq: UInt64) throws {
        try db.cachedStatement(sql: "DELETE FROM held WHERE origin = ? AND seq = ?").execute(arguments: [Data(origin.bytes), Int64(seq)])
    }

    /// Forgets `origin`'s transactions from `seq` on.
    static func remove(_ db: Database, _ origin: NodeID, from seq: UInt64) throws {
        try db.cachedStatement(sql: "DELETE FROM held WHERE origin = ? AND seq >= ?").execute(arguments: [Data(origin.bytes), Int64(seq)])
    }

    /// The count and bytes of all that is held.
    static func share(_ db: Database) throws -> (count: Int, bytes: Int) {
        let row = try Row.fetchOne(db, sql: "SELECT count(*) AS n, coalesce(sum(length(body)), 0) AS b FROM held")!
        return (row["n"], row["b"])
    }

    /// The count and bytes of what one sender (nil: pulls and bundles) has held here.
    static func share(_ db: Database, sentBy sender: Data?) throws -> (count: Int, bytes: Int) {
        let row = try Row.fetchOne(
            db, sql: "SELECT count(*) AS n, coalesce(sum(length(body)), 0) AS b FROM held WHERE via IS ?", arguments: [sender])!
        return (row["n"], row["b"])
    }

    /// The origins of what one sender has held here.
    static func origins(_ db: Database, sentBy sender: Data?) throws -> Set<Data> {
        Set(try Data.fetchAll(db, sql: "SELECT DISTINCT origin FROM held WHERE via IS ?", arguments: [sender]))
    }

    /// Which held work a drop or a listing is about.
    struct Selection {
        var condition = "1"
        var arguments: StatementArguments = []

        init(sender: HeldSender? = nil, origin: NodeID? = nil) {
            var conditions: [String] = []
            if let sender {
                conditions.append("via IS ?")
                arguments += [sender.via]
            }
            if let origin {
                conditions.append("origin = ?")
                arguments += [Data(origin.bytes)]
            }
            if !conditions.isEmpty { condition = conditions.joined(separator: " AND ") }
        }

        init(arrivedBefore cutoff: Int64) {
            condition = "received < ?"
            arguments = [cutoff]
        }

        fileprivate init(_ origin: Data, from seq: Int64) {
            condition = "origin = ? AND seq >= ?"
            arguments = [origin, seq]
        }
    }

    /// Drops the selected work, and of each origin touched every later transaction held (held
    /// work of an origin runs without a gap: what follows a dropped one could never be applied).
    static func drop(_ db: Database, _ selection: Selection) throws -> [HeldWork] {
        let starts = try Row.fetchAll(
            db, sql: "SELECT origin, min(seq) AS seq FROM held WHERE \(selection.condition) GROUP BY origin", arguments: selection.arguments)
        var dropped: [HeldWork] = []
        for row in starts {
            let tail = Selection(row["origin"] as Data, from: row["seq"] as Int64)
            dropped += try work(db, tail)
            try db.execute(sql: "DELETE FROM held WHERE \(tail.condition)", arguments: tail.arguments)
        }
        return dropped
    }

    /// The selected work, per sender and origin.
    static func work(_ db: Database, _ selection: Selection) throws -> [HeldWork] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT via, origin, count(*) AS n, coalesce(sum(length(body)), 0) AS bytes, min(seq) AS first, max(seq) AS last,
                    min(received) AS oldest, max(received) AS newest
                FROM held WHERE \(selection.condition) GROUP BY via, origin ORDER BY via, origin
                """, arguments: selection.arguments
        ).compactMap { row in
            guard let origin = NodeID(bytes: row["origin"] as Data) else { return nil }
            return HeldWork(
                sender: HeldSender(row["via"] as Data?), origin: origin, transactions: row["n"], bytes: row["bytes"],
                firstSeq: UInt64(row["first"] as Int64), lastSeq: UInt64(row["last"] as Int64), oldest: UInt64(row["oldest"] as Int64),
                newest: UInt64(row["newest"] as Int64))
        }
    }
}

/// A row of `rejection`.
struct RejectionRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "rejection"
    enum CodingKeys: String, CodingKey {
        case origin, seq, reason, at, permanent
        case refusedBy = "refused_by"
    }
    var origin: Data
    var seq: Int64
    var reason: String
    var refusedBy: String
    /// When this node learned of it (ms since 1970).
    var at: Int64
    /// True: the transaction itself was refused; false: a bad copy was turned away.
    var permanent: Bool

    init(_ r: Refusal, at now: UInt64) {
        origin = Data(r.origin.bytes)
        seq = Int64(r.seq)
        reason = r.reason
        refusedBy = r.refusedBy
        at = Int64(clamping: now)
        permanent = r.permanent ?? true
    }

    var refusal: Refusal? {
        NodeID(bytes: origin).map { Refusal(origin: $0, seq: UInt64(seq), reason: reason, refusedBy: refusedBy, permanent: permanent) }
    }

    /// Keeps a refusal (a later word on the same transaction replaces an earlier one).
    static func note(_ db: Database, _ r: Refusal, at now: UInt64) throws {
        try RejectionRow(r, at: now).insert(db, onConflict: .replace)
    }

    /// Every refusal known here, oldest first.
    static func all(_ db: Database) throws -> [Refusal] {
        try RejectionRow.fetchAll(db, sql: "SELECT * FROM rejection ORDER BY at, origin, seq").compactMap(\.refusal)
    }

    /// The numbers of `origin`'s work that `peer` is said to have refused.
    static func seqs(_ db: Database, of origin: NodeID, refusedBy peer: String) throws -> [Int64] {
        try Int64.fetchAll(
            db, sql: "SELECT seq FROM rejection WHERE origin = ? AND refused_by = ? ORDER BY seq", arguments: [Data(origin.bytes), peer])
    }

    static func remove(_ db: Database, of origin: NodeID, refusedBy peer: String) throws {
        try db.execute(sql: "DELETE FROM rejection WHERE origin = ? AND refused_by = ?", arguments: [Data(origin.bytes), peer])
    }

    /// Forgets the refusal of one transaction (accepted after all).
    static func remove(_ db: Database, _ origin: NodeID, _ seq: UInt64) throws {
        try db.cachedStatement(sql: "DELETE FROM rejection WHERE origin = ? AND seq = ?").execute(arguments: [Data(origin.bytes), Int64(seq)])
    }

    /// Forgets the refusals of `origin`'s work from `seq` on (that history was withdrawn).
    static func remove(_ db: Database, _ origin: NodeID, from seq: UInt64) throws {
        try db.execute(sql: "DELETE FROM rejection WHERE origin = ? AND seq >= ?", arguments: [Data(origin.bytes), Int64(seq)])
    }
}
