import Foundation
import GRDB
import SyncProtocol

extension Store {
    /// Rebuilds every record and ledger from the log's accepted transactions: what a replica holds
    /// when a transaction it applied is refused afterwards (a revocation that arrived late). The
    /// merge rules give the same state whatever order transactions are applied in, so this is the
    /// state of a replica that never applied the refused ones. Runs inside the caller's write.
    func rematerialise(_ db: Database, _ interner: inout Interner) throws {
        try db.execute(
            sql: """
                DELETE FROM record; DELETE FROM field_history; DELETE FROM dangling_ref;
                DELETE FROM ledger_entry; DELETE FROM ledger_duplicate; DELETE FROM tx_author;
                """)
        let inflater = Inflate()
        let rows = try Row.fetchCursor(
            db,
            sql: "SELECT node.id AS origin, seq, body, size FROM log JOIN node ON node.ix = log.origin WHERE refused IS NULL ORDER BY log.origin, seq"
        )
        while let row = try rows.next() {
            let stored = row["body"] as Data
            let body: [UInt8]
            if let size = row["size"] as Int64? { body = try inflater.unpack(stored, size: Int(size)) } else { body = [UInt8](stored) }
            let t = try WireCodec.decode(body)
            try applyChanges(db, t, &interner)
        }
    }

    /// After a registry change: refuses, in the log, every transaction a revocation cuts off that
    /// this replica had applied before the revocation reached it, and rebuilds the records if there
    /// were any. Returns the refusals made.
    func enforceRevocations(_ db: Database, touched t: Transaction, _ interner: inout Interner) throws -> [Refusal] {
        var refused: [Refusal] = []
        for case .set(let w) in t.changes where w.collection == PolicyRules.registryCollection && w.field == RegistryEntry.cutField {
            guard let node = NodeID(hex: w.recordID), let entry = try Self.registryEntry(db, node, shared: interns),
                let cut = entry.revokedAfterSeq, let ix = try interner.nodeIx(node, db, create: false)
            else { continue }
            let late = try Row.fetchAll(
                db.cachedStatement(sql: "SELECT seq, hlc FROM log WHERE origin = ? AND seq > ? AND refused IS NULL ORDER BY seq"),
                arguments: [ix, Int64(cut)])
            for row in late {
                let seq = UInt64(row["seq"] as Int64)
                let probe = Transaction(
                    origin: node, seq: seq, hlc: Timestamp(clock: UInt64(bitPattern: row["hlc"] as Int64), node: node), changes: [])
                let reason = entry.revocationRefuses(probe) ?? "node \(entry.label) was revoked"
                try db.cachedStatement(sql: "UPDATE log SET refused = ? WHERE origin = ? AND seq = ?").execute(arguments: [reason, ix, Int64(seq)])
                let refusal = Refusal(origin: node, seq: seq, reason: reason, refusedBy: info.label)
                try noteRejection(db, refusal)
                refused.append(refusal)
            }
            // The verdicts are part of the history chain peers compare (`HistoryChain`).
            if let first = late.first { try rechain(db, origin: ix, from: UInt64(first["seq"] as Int64), &interner) }
        }
        if !refused.isEmpty { try rematerialise(db, &interner) }
        return refused
    }
}
