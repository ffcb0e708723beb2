import Foundation
import GRDB
import SyncProtocol

extension Store {
    /// Migration `v11-forks`.
    static func migrateV11Forks(_ db: Database) throws {
        // Each log row carries its origin's history up to it (`HistoryChain`), so that two
        // replicas holding different signed transactions under one (origin, seq) find out
        // when they meet; `fork_copy` keeps the copies that were not kept, as evidence.
        try db.execute(
            sql: """
                ALTER TABLE log ADD COLUMN chain BLOB;
                CREATE TABLE fork_copy (
                    origin BLOB NOT NULL,
                    seq INTEGER NOT NULL,
                    sig BLOB NOT NULL,
                    body BLOB NOT NULL,
                    hlc INTEGER NOT NULL,
                    source TEXT NOT NULL,
                    seen INTEGER NOT NULL,
                    withdrawn INTEGER NOT NULL,
                    reported INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (origin, seq, sig)
                ) WITHOUT ROWID;
                """)
        var previous: (origin: Int64, seq: Int64, chain: Data)?
        let rows = try Row.fetchAll(db, sql: "SELECT origin, seq, sig, refused FROM log ORDER BY origin, seq")
        for row in rows {
            let origin: Int64 = row["origin"]
            let seq: Int64 = row["seq"]
            let before = previous.flatMap { $0.origin == origin && $0.seq == seq - 1 ? $0.chain : nil }
            let chain = HistoryChain.link(before, signature: [UInt8]((row["sig"] as Data?) ?? Data()), refused: row["refused"] as String? != nil)
            try db.execute(sql: "UPDATE log SET chain = ? WHERE origin = ? AND seq = ?", arguments: [chain, origin, seq])
            previous = (origin, seq, chain)
        }
    }
}
