import GRDB

/// The node's key-value settings table.
enum Meta {
    enum Key: String {
        case nodeID = "node_id"
        case site, label, created
        case schemaVersion = "schema_version"
        case clockMillis = "clock_millis"
        case clockCounter = "clock_counter"
        case role
        case publicKey = "public_key"
        case trustAnchor = "trust_anchor"
        /// Set by a migration that changed the log: the records are rebuilt from it on open.
        case rematerialise
        /// The digest of the plan the review's kept lists and triggers were made from (`ReviewIndex`).
        case reviewIndex = "review_index"
        /// Where the PostgreSQL mirror stands (`MirrorStatus`, JSON), as the mirror last wrote it.
        case mirror = "mirror_status"
    }

    static func set(_ db: Database, _ key: Key, _ value: some DatabaseValueConvertible) throws {
        try db.cachedStatement(sql: "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .execute(arguments: [key.rawValue, value])
    }

    static func string(_ db: Database, _ key: Key) throws -> String? {
        try String.fetchOne(db.cachedStatement(sql: "SELECT value FROM meta WHERE key = ?"), arguments: [key.rawValue])
    }

    static func int(_ db: Database, _ key: Key) throws -> Int64? {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT value FROM meta WHERE key = ?"), arguments: [key.rawValue])
    }
}
