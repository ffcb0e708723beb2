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
    /// the older one's (in memory here, and in the table by `Store.saveContacts`).
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
