import Foundation
import GRDB
import SyncProtocol

extension Store {
    /// Migration `v7-contact`.
    static func migrateV07Contact(_ db: Database) throws {
        // What a serving node learns from each authenticated request: when the caller was
        // last heard from, how far its clock was from this one, the protocol it spoke, and
        // how many transactions of its own it held then (its own entry of the vector it sent).
        // Local to the serving node, never replicated: HQ's sync report and `node list`.
        try db.execute(
            sql: """
                CREATE TABLE contact (
                    node BLOB PRIMARY KEY NOT NULL, heard INTEGER NOT NULL, skew INTEGER NOT NULL,
                    protocol INTEGER NOT NULL, own_seq INTEGER
                ) WITHOUT ROWID;
                """)
    }
}
