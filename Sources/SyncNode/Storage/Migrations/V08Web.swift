import Foundation
import GRDB
import SyncProtocol

extension Store {
    /// Migration `v8-web`.
    static func migrateV08Web(_ db: Database) throws {
        // The people who may use this node's web pages, and their sessions (a session is
        // found by the SHA-256 of its cookie's token). Local to the node, never replicated.
        try db.execute(
            sql: """
                CREATE TABLE web_user (name TEXT PRIMARY KEY NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL, created INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE web_session (token TEXT PRIMARY KEY NOT NULL, user TEXT NOT NULL, csrf TEXT NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID;
                CREATE INDEX web_session_user ON web_session (user);
                """)
    }
}
