import Foundation
import GRDB
import SyncProtocol

extension Store {
    /// Migration `v13-submission-key`.
    static func migrateV13SubmissionKey(_ db: Database) throws {
        // The keys of the submissions this node recorded (web forms, each with a key made when
        // the form was shown), with the transaction that recorded each: a form sent again after
        // a lost answer is recognised and recorded once. Local, never replicated.
        try db.execute(
            sql: """
                CREATE TABLE submission_key (key TEXT PRIMARY KEY NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
                """)
    }
}
