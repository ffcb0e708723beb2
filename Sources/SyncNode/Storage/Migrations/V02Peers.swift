import Foundation
import GRDB
import SyncProtocol

extension Store {
    /// Migration `v2-peers`.
    static func migrateV02Peers(_ db: Database) throws {
        // Local bookkeeping of remembered peers; never replicated.
        try db.execute(
            sql: """
                CREATE TABLE peer (
                    url TEXT PRIMARY KEY NOT NULL,
                    added INTEGER NOT NULL,
                    node BLOB,
                    label TEXT,
                    last_attempt INTEGER,
                    last_success INTEGER,
                    last_error TEXT,
                    skew_ms INTEGER,
                    vector TEXT,
                    sent INTEGER NOT NULL DEFAULT 0,
                    received INTEGER NOT NULL DEFAULT 0
                ) WITHOUT ROWID;
                """)
    }
}
