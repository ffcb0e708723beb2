import Foundation
import GRDB
import SyncProtocol

/// A person who may use this node's web pages. Local to the node (never replicated): each
/// office decides who may look at or write its replica.
public struct WebUser: Equatable, Sendable {
    public enum Role: String, Sendable, CaseIterable {
        /// Reads the dashboard and lists.
        case viewer
        /// Also records work through the forms.
        case clerk
        /// Also resolves conflicts.
        case admin

        public var mayWrite: Bool { self != .viewer }
        public var mayResolve: Bool { self == .admin }
    }

    public var name: String
    public var role: Role
    /// The password's bcrypt hash.
    public var passwordHash: String
    public var created: UInt64

    /// bcrypt's cost for every password hash the node makes (`user add`, `user passwd`, the web page).
    public static let passwordCost: UInt8 = 12

    /// What is wrong with a password a user chose, if anything: at least 8 characters, and at most
    /// the 72 bytes bcrypt reads (it would ignore the rest).
    public enum PasswordProblem: Equatable, Sendable {
        case tooShort(characters: Int)
        case tooLong

        public init?(_ password: String) {
            if password.count < 8 {
                self = .tooShort(characters: password.count)
            } else if password.utf8.count > 72 {
                self = .tooLong
            } else {
                return nil
            }
        }
    }
}

/// A logged-in browser: found by the SHA-256 of its cookie's token (the token itself is never
/// stored), with the form token its writes must carry.
public struct WebSession: Equatable, Sendable {
    public var user: WebUser
    public var csrf: String
    public var expires: UInt64
}

extension Store {
    /// Adds a user; refuses a name that exists (exit 73) or is not a plain name.
    public func addWebUser(name: String, role: WebUser.Role, passwordHash: String) throws(SyncNodeError) {
        guard !name.isEmpty, name.utf8.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "._-@".contains($0) }) else {
            throw .invalid("a user name is 1 to 64 letters, digits or . _ - @; '\(name.prefix(64))' is not")
        }
        let now = clock.nowMillis()
        let added = try StorageErrors.map {
            try pool.write { db -> Bool in
                guard try Int.fetchOne(db, sql: "SELECT 1 FROM web_user WHERE name = ?", arguments: [name]) == nil else { return false }
                try db.execute(
                    sql: "INSERT INTO web_user (name, role, hash, created) VALUES (?, ?, ?, ?)",
                    arguments: [name, role.rawValue, passwordHash, Int64(now)])
                return true
            }
        }
        guard added else { throw SyncNodeError(.nodeExists, "user \(name) exists already; remove it first").next(.removeUserFirst(name)) }
    }

    /// The node's web users, by name.
    public func webUsers() throws(SyncNodeError) -> [WebUser] {
        try read { db in try Row.fetchAll(db, sql: "SELECT name, role, hash, created FROM web_user ORDER BY name").compactMap(Self.webUser) }
    }

    public func webUser(_ name: String) throws(SyncNodeError) -> WebUser? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT name, role, hash, created FROM web_user WHERE name = ?", arguments: [name]).flatMap(Self.webUser)
        }
    }

    /// Removes a user and ends their sessions; false if there was none.
    @discardableResult
    public func removeWebUser(_ name: String) throws(SyncNodeError) -> Bool {
        try StorageErrors.map {
            try pool.write { db -> Bool in
                try db.execute(sql: "DELETE FROM web_session WHERE user = ?", arguments: [name])
                try db.execute(sql: "DELETE FROM web_user WHERE name = ?", arguments: [name])
                return db.changesCount > 0
            }
        }
    }

    /// Replaces a user's password hash and ends their sessions, all but `keeping` (the session that
    /// changed it on the web page): how many ended, or nil if there is no such user.
    @discardableResult
    public func setWebUserPassword(_ name: String, passwordHash: String, keeping tokenHash: String? = nil) throws(SyncNodeError) -> Int? {
        try StorageErrors.map {
            try pool.write { db -> Int? in
                try db.execute(sql: "UPDATE web_user SET hash = ? WHERE name = ?", arguments: [passwordHash, name])
                guard db.changesCount > 0 else { return nil }
                try db.execute(sql: "DELETE FROM web_session WHERE user = ? AND token IS NOT ?", arguments: [name, tokenHash])
                return db.changesCount
            }
        }
    }

    /// Starts a session (and forgets expired ones).
    public func startWebSession(user: String, tokenHash: String, csrf: String, expires: UInt64) throws(SyncNodeError) {
        let now = clock.nowMillis()
        try StorageErrors.map {
            try pool.write { db in
                try db.execute(sql: "DELETE FROM web_session WHERE expires < ?", arguments: [Int64(now)])
                try db.execute(
                    sql: "INSERT OR REPLACE INTO web_session (token, user, csrf, expires) VALUES (?, ?, ?, ?)",
                    arguments: [tokenHash, user, csrf, Int64(expires)])
            }
        }
    }

    /// The live session of a token hash, with its user as they are now; nil if unknown, expired
    /// or its user was removed.
    public func webSession(tokenHash: String, now: UInt64) throws(SyncNodeError) -> WebSession? {
        try read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT u.name AS name, u.role AS role, u.hash AS hash, u.created AS created, s.csrf AS csrf, s.expires AS expires
                        FROM web_session s JOIN web_user u ON u.name = s.user WHERE s.token = ? AND s.expires >= ?
                        """, arguments: [tokenHash, Int64(now)]),
                let user = Self.webUser(row)
            else { return nil }
            return WebSession(user: user, csrf: row["csrf"], expires: UInt64(row["expires"] as Int64))
        }
    }

    public func endWebSession(tokenHash: String) throws(SyncNodeError) {
        try StorageErrors.map { try pool.write { db in try db.execute(sql: "DELETE FROM web_session WHERE token = ?", arguments: [tokenHash]) } }
    }

    private static func webUser(_ row: Row) -> WebUser? {
        guard let role = WebUser.Role(rawValue: row["role"]) else { return nil }
        return WebUser(name: row["name"], role: role, passwordHash: row["hash"], created: UInt64(row["created"] as Int64))
    }
}

/// One transaction this node recorded, with what became of it.
public struct OwnWork: Sendable {
    public enum State: String, Sendable {
        /// No peer has confirmed it yet.
        case notYetSent = "not_sent"
        /// A peer confirmed it, but not HQ (as far as this node knows).
        case sent
        /// HQ holds it (or this node is HQ).
        case atHQ = "at_hq"
        /// Refused for good; `reason` says why.
        case refused
    }

    public var seq: UInt64
    /// When it was recorded (ms since 1970).
    public var time: UInt64
    public var changes: [Change]
    public var state: State
    public var reason: String?
}

extension Store {
    /// The last `limit` transactions this node recorded, newest first, with their sync state:
    /// a peer's confirmation (its vector at the last round) says it arrived; a refusal says why not.
    public func ownWork(limit: Int) throws(SyncNodeError) -> [OwnWork] {
        let own = info.nodeID
        let mine = try vector()
        let top = mine[own]
        guard top > 0, limit > 0 else { return [] }
        var since = VersionVector()
        for origin in mine.entries.keys where origin != own { since[origin] = .max }
        since[own] = top > UInt64(limit) ? top - UInt64(limit) : 0
        let transactions = try transactions(missingFrom: since).transactions.map(\.transaction).filter { $0.origin == own }
        let roles = Dictionary(try registry().map { ($0.node, $0.role) }, uniquingKeysWith: { a, _ in a })
        var atHQ: UInt64 = info.role == .hq ? top : 0
        var sent: UInt64 = 0
        for peer in try peers() {
            let confirmed = peer.vector?[own] ?? 0
            sent = max(sent, confirmed)
            if let node = peer.node, roles[node] == .hq { atHQ = max(atHQ, confirmed) }
        }
        var refused: [UInt64: String] = [:]
        for r in try rejections() where isOwnWorkRefused(r) { refused[r.seq] = "\(r.reason) (\(r.refusedBy))" }
        return transactions.reversed().map { t in
            let state: OwnWork.State =
                refused[t.seq] != nil ? .refused : t.seq <= atHQ ? .atHQ : t.seq <= sent ? .sent : .notYetSent
            return OwnWork(seq: t.seq, time: t.hlc.millis, changes: t.changes, state: state, reason: refused[t.seq])
        }
    }
}
