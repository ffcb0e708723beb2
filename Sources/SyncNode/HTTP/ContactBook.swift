import Foundation
import GRDB
import SyncProtocol

/// What a serving node learned of a caller at its last authenticated request.
public struct NodeContact: Equatable, Sendable {
    /// When the request arrived, by this node's clock (ms since 1970).
    public var heard: UInt64
    /// The caller's clock minus this node's at that moment (ms; positive: the caller is ahead).
    public var skewMillis: Int64
    /// The protocol version its request spoke.
    public var protocolVersion: Int
    /// How many transactions of its own the caller held (its own entry of the vector it sent
    /// with its last pull); nil until it has pulled.
    public var ownSeq: UInt64?

    public init(heard: UInt64, skewMillis: Int64, protocolVersion: Int, ownSeq: UInt64?) {
        self.heard = heard
        self.skewMillis = skewMillis
        self.protocolVersion = protocolVersion
        self.ownSeq = ownSeq
    }
}

extension NodeContact {
    /// This contact in place of an older one: an own-seq it does not carry (a push tells none) is
    /// the older one's. (`saveContacts` keeps the same rule in SQL.)
    func over(_ older: NodeContact?) -> NodeContact {
        var contact = self
        if contact.ownSeq == nil { contact.ownSeq = older?.ownSeq }
        return contact
    }
}

/// The callers' contacts, kept in memory by the request path (no write per request) and saved
/// with the replay cache: every 10 seconds while serving and at shutdown.
final class ContactBook: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [NodeID: NodeContact] = [:]

    func note(_ node: NodeID, _ contact: NodeContact, unlessNewer: Bool = false) {
        lock.withLock {
            if unlessNewer, let newer = pending[node], newer.heard >= contact.heard { return }
            pending[node] = contact.over(pending[node])
        }
    }

    /// What arrived since the last drain, left in place.
    func current() -> [NodeID: NodeContact] {
        lock.withLock { pending }
    }

    /// What arrived since the last call.
    func drain() -> [NodeID: NodeContact] {
        lock.withLock {
            defer { pending = [:] }
            return pending
        }
    }
}

extension Store {
    /// Records callers' contacts; an own-seq already known is kept when a contact carries none.
    func saveContacts(_ contacts: [NodeID: NodeContact]) throws(SyncNodeError) {
        guard !contacts.isEmpty else { return }
        try StorageErrors.map {
            try pool.write { db in
                for (node, contact) in contacts {
                    try db.execute(
                        sql: """
                            INSERT INTO contact (node, heard, skew, protocol, own_seq) VALUES (?, ?, ?, ?, ?)
                            ON CONFLICT (node) DO UPDATE SET heard = excluded.heard, skew = excluded.skew,
                                protocol = excluded.protocol, own_seq = coalesce(excluded.own_seq, contact.own_seq)
                            """,
                        arguments: [
                            Data(node.bytes), Int64(contact.heard), contact.skewMillis, contact.protocolVersion, contact.ownSeq.map { Int64($0) },
                        ])
                }
            }
        }
    }

    /// The last contact of every node that called this one.
    public func contacts() throws(SyncNodeError) -> [NodeID: NodeContact] {
        try read { db in
            var out: [NodeID: NodeContact] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT node, heard, skew, protocol, own_seq FROM contact") {
                guard let node = NodeID(bytes: row["node"] as Data) else { continue }
                out[node] = NodeContact(
                    heard: UInt64(row["heard"] as Int64), skewMillis: row["skew"], protocolVersion: row["protocol"],
                    ownSeq: (row["own_seq"] as Int64?).map { UInt64($0) })
            }
            return out
        }
    }
}
