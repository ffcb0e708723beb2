import Foundation
import GRDB
import SyncProtocol

/// Who handed this node a held transaction: the authenticated node that pushed it, or a pull or a
/// bundle (nothing authenticates who made those; together they count as one sender).
public enum HeldSender: Hashable, Sendable {
    case pulled
    case node(NodeID)

    init(_ via: Data?) {
        if let via, let node = NodeID(bytes: via) { self = .node(node) } else { self = .pulled }
    }

    /// The `via` column's value.
    var via: Data? {
        if case .node(let node) = self { return Data(node.bytes) }
        return nil
    }
}

/// What one sender left waiting here of one origin's work: the lines of `held list`, and what
/// `held drop` and the age limit dropped.
public struct HeldWork: Sendable, Equatable {
    public var sender: HeldSender
    public var origin: NodeID
    public var transactions: Int
    /// Their encoded bytes, as counted against the sender's share.
    public var bytes: Int
    public var firstSeq: UInt64
    public var lastSeq: UInt64
    /// When the first and the last of them arrived here (ms since 1970).
    public var oldest: UInt64
    public var newest: UInt64
}

extension Store {
    /// The held work, per sender and origin.
    public func heldWork() throws(SyncNodeError) -> [HeldWork] {
        try read { db in try HeldRow.work(db, HeldRow.Selection()) }
    }

    /// Drops held work: `sender`'s (any sender's when nil) of `origin` (any origin's when nil),
    /// and of each origin touched every later transaction held, whoever sent it (held work of an
    /// origin runs without a gap from the vector: what follows a dropped transaction could never
    /// be applied). The vector is not touched, so the dropped work is asked for again: a pull asks
    /// from the vector, and a sender offers what this node's vector lacks. Returns what was dropped.
    public func dropHeldWork(sender: HeldSender?, origin: NodeID?) throws(SyncNodeError) -> [HeldWork] {
        let selection = HeldRow.Selection(sender: sender, origin: origin)
        return try StorageErrors.map { try pool.write { db in try HeldRow.drop(db, selection) } }
    }

    /// Drops the held work that arrived more than `limits.maxHeldAgeMillis` ago (and what follows
    /// it of its origin, see `dropHeldWork`). One indexed read when nothing is that old; runs at
    /// open, at every release of held work and at every apply. Returns what was dropped.
    @discardableResult
    public func expireHeldWork() throws(SyncNodeError) -> [HeldWork] {
        let now = clock.nowMillis()
        guard now > limits.maxHeldAgeMillis else { return [] }
        let cutoff = Int64(clamping: now - limits.maxHeldAgeMillis)
        guard try read({ db in try HeldRow.anyOlder(db, than: cutoff) }) else { return [] }
        return try StorageErrors.map { try pool.write { db in try HeldRow.drop(db, HeldRow.Selection(arrivedBefore: cutoff)) } }
    }
}
