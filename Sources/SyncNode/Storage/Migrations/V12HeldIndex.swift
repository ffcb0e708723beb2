import Foundation
import GRDB
import SyncProtocol

extension Store {
    /// Migration `v12-held-index`.
    static func migrateV12HeldIndex(_ db: Database) throws {
        // Held work is counted per sender (each sender's share of the bound), listed and
        // dropped by sender, and dropped by age: one seek each instead of a scan of `held`.
        try db.execute(
            sql: """
                CREATE INDEX held_via ON held (via, origin);
                CREATE INDEX held_received ON held (received);
                """)
    }
}
