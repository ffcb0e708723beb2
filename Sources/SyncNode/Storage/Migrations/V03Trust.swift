import Foundation
import GRDB
import SyncProtocol

extension Store {
    /// Migration `v3-trust`.
    static func migrateV03Trust(_ db: Database) throws {
        try db.execute(
            sql: """
                -- The origin's Ed25519 signature, and why a transaction was refused (then it is
                -- kept for the record and the vector, never materialised nor relayed).
                ALTER TABLE log ADD COLUMN sig BLOB;
                ALTER TABLE log ADD COLUMN refused TEXT;

                -- Transactions from nodes the registry does not know yet: applied once it does.
                CREATE TABLE held (
                    origin BLOB NOT NULL,
                    seq INTEGER NOT NULL,
                    body BLOB NOT NULL,
                    sig BLOB NOT NULL,
                    received INTEGER NOT NULL,
                    PRIMARY KEY (origin, seq)
                ) WITHOUT ROWID;

                -- Refusals this node made or learned of (its own work refused elsewhere).
                CREATE TABLE rejection (
                    origin BLOB NOT NULL,
                    seq INTEGER NOT NULL,
                    reason TEXT NOT NULL,
                    refused_by TEXT NOT NULL,
                    at INTEGER NOT NULL,
                    -- 1: the transaction itself was refused; 0: a bad copy was turned away.
                    permanent INTEGER NOT NULL DEFAULT 1,
                    PRIMARY KEY (origin, seq)
                ) WITHOUT ROWID;
                """)
    }
}
