import Foundation
import GRDB
import SyncNode
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

/// The web pages' accounts and sessions: the `web_user` and `web_session` tables (made by the
/// node's migration v8), local to this node and never replicated. Their one owner: every read and
/// write of them is here, through the two record types below.
extension Store {
    /// A row of `web_user`.
    struct WebUserRow: Codable, FetchableRecord, PersistableRecord {
        static let databaseTableName = "web_user"
        var name: String
        var role: String
        var hash: String
        var created: Int64

        /// The user, or nil for a role this version does not know (such a user cannot sign in).
        var user: WebUser? {
            WebUser.Role(rawValue: role).map { WebUser(name: name, role: $0, passwordHash: hash, created: UInt64(max(0, created))) }
        }
    }

    /// A row of `web_session`: the SHA-256 of a session token, never the token.
    struct WebSessionRow: Codable, FetchableRecord, PersistableRecord {
        static let databaseTableName = "web_session"
        var token: String
        var user: String
        var csrf: String
        var expires: Int64
    }

    /// Adds a user; refuses a name that exists (exit 73) or is not a plain name.
    public func addWebUser(name: String, role: WebUser.Role, passwordHash: String) throws(SyncNodeError) {
        guard !name.isEmpty, name.utf8.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "._-@".contains($0) }) else {
            throw .invalid("a user name is 1 to 64 letters, digits or . _ - @; '\(name.prefix(64))' is not")
        }
        let row = WebUserRow(name: name, role: role.rawValue, hash: passwordHash, created: Int64(nowMillis()))
        let added = try writeLocal { db -> Bool in
            guard try WebUserRow.exists(db, key: name) == false else { return false }
            try row.insert(db)
            return true
        }
        guard added else { throw SyncNodeError(.nodeExists, "user \(name) exists already; remove it first").next(.removeUserFirst(name)) }
    }

    /// The node's web users, by name.
    public func webUsers() throws(SyncNodeError) -> [WebUser] {
        try read { db in try WebUserRow.order(Column("name")).fetchAll(db).compactMap(\.user) }
    }

    public func webUser(_ name: String) throws(SyncNodeError) -> WebUser? {
        try read { db in try WebUserRow.fetchOne(db, key: name)?.user }
    }

    /// Removes a user and ends their sessions; false if there was none.
    @discardableResult
    public func removeWebUser(_ name: String) throws(SyncNodeError) -> Bool {
        try writeLocal { db -> Bool in
            try WebSessionRow.filter(Column("user") == name).deleteAll(db)
            return try WebUserRow.deleteOne(db, key: name)
        }
    }

    /// Replaces a user's password hash and ends their sessions, all but `keeping` (the session that
    /// changed it on the web page): how many ended, or nil if there is no such user.
    @discardableResult
    public func setWebUserPassword(_ name: String, passwordHash: String, keeping tokenHash: String? = nil) throws(SyncNodeError) -> Int? {
        try writeLocal { db -> Int? in
            guard var row = try WebUserRow.fetchOne(db, key: name) else { return nil }
            row.hash = passwordHash
            try row.update(db)
            var others = WebSessionRow.filter(Column("user") == name)
            if let tokenHash { others = others.filter(Column("token") != tokenHash) }
            return try others.deleteAll(db)
        }
    }

    /// Starts a session (and forgets expired ones).
    public func startWebSession(user: String, tokenHash: String, csrf: String, expires: UInt64) throws(SyncNodeError) {
        let now = Int64(nowMillis())
        try writeLocal { db in
            try WebSessionRow.filter(Column("expires") < now).deleteAll(db)
            try WebSessionRow(token: tokenHash, user: user, csrf: csrf, expires: Int64(clamping: expires)).insert(db, onConflict: .replace)
        }
    }

    /// The live session of a token hash, with its user as they are now; nil if unknown, expired
    /// or its user was removed.
    public func webSession(tokenHash: String, now: UInt64) throws(SyncNodeError) -> WebSession? {
        try read { db in
            guard let session = try WebSessionRow.fetchOne(db, key: tokenHash), session.expires >= Int64(clamping: now),
                let user = try WebUserRow.fetchOne(db, key: session.user)?.user
            else { return nil }
            return WebSession(user: user, csrf: session.csrf, expires: UInt64(max(0, session.expires)))
        }
    }

    public func endWebSession(tokenHash: String) throws(SyncNodeError) {
        try writeLocal { db in _ = try WebSessionRow.deleteOne(db, key: tokenHash) }
    }
}
