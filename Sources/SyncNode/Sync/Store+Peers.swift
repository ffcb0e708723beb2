import Foundation
import GRDB
import SyncProtocol

/// What this node knows about one remembered peer.
public struct PeerRecord: Sendable, Equatable {
    public var url: String
    public var added: UInt64
    public var node: NodeID?
    public var label: String?
    public var lastAttempt: UInt64?
    public var lastSuccess: UInt64?
    public var lastError: String?
    public var skewMillis: Int64?
    /// The peer's vector as last confirmed by the peer.
    public var vector: VersionVector?
    public var sent: Int
    public var received: Int
}

/// The outcome of one sync round with a peer, for bookkeeping.
public enum SyncOutcome: Sendable {
    case success(peer: PeerIdentity, vector: VersionVector, skewMillis: Int64, sent: Int, received: Int)
    case failure(message: String)
}

/// The node's bookkeeping of other nodes, never replicated: the peers it syncs with (`peer`,
/// migration v2) and the callers it has heard from (`contact`, migration v7). Their one owner:
/// every read and write of the two tables is here, through the two record types below.
extension Store {
    /// A row of `peer`.
    struct PeerRow: Codable, FetchableRecord, PersistableRecord {
        static let databaseTableName = "peer"
        enum CodingKeys: String, CodingKey {
            case url, added, node, label
            case lastAttempt = "last_attempt"
            case lastSuccess = "last_success"
            case lastError = "last_error"
            case skew = "skew_ms"
            case vector, sent, received
        }
        var url: String
        var added: Int64
        var node: Data?
        var label: String?
        var lastAttempt: Int64?
        var lastSuccess: Int64?
        var lastError: String?
        var skew: Int64?
        /// The peer's vector as last confirmed, in its wire form.
        var vector: String?
        var sent: Int
        var received: Int

        var record: PeerRecord {
            PeerRecord(
                url: url, added: UInt64(max(0, added)), node: node.flatMap { NodeID(bytes: $0) }, label: label,
                lastAttempt: lastAttempt.map { UInt64(max(0, $0)) }, lastSuccess: lastSuccess.map { UInt64(max(0, $0)) }, lastError: lastError,
                skewMillis: skew, vector: vector.flatMap { try? WireCodec.decodeMessage(VersionVector.self, from: Array($0.utf8)) }, sent: sent,
                received: received)
        }
    }

    /// A row of `contact`.
    struct ContactRow: Codable, FetchableRecord, PersistableRecord {
        static let databaseTableName = "contact"
        enum CodingKeys: String, CodingKey {
            case node, heard, skew
            case protocolVersion = "protocol"
            case ownSeq = "own_seq"
        }
        var node: Data
        var heard: Int64
        var skew: Int64
        var protocolVersion: Int
        var ownSeq: Int64?

        init(_ node: NodeID, _ contact: NodeContact) {
            self.node = Data(node.bytes)
            heard = Int64(clamping: contact.heard)
            skew = contact.skewMillis
            protocolVersion = contact.protocolVersion
            ownSeq = contact.ownSeq.map { Int64(clamping: $0) }
        }

        var contact: NodeContact {
            NodeContact(heard: UInt64(max(0, heard)), skewMillis: skew, protocolVersion: protocolVersion, ownSeq: ownSeq.map { UInt64(max(0, $0)) })
        }
    }

    /// Remembers a peer URL. Adding one already known changes nothing.
    public func addPeer(_ url: String) throws(SyncNodeError) {
        guard let parsed = URL(string: url), let scheme = parsed.scheme, ["http", "https"].contains(scheme.lowercased()), parsed.host != nil else {
            throw .invalid("'\(url.prefix(80))' is not an http:// or https:// URL of a peer, such as http://hq.example:8420")
        }
        let row = PeerRow(
            url: url, added: Int64(clock.nowMillis()), node: nil, label: nil, lastAttempt: nil, lastSuccess: nil, lastError: nil, skew: nil,
            vector: nil, sent: 0, received: 0)
        try writeLocal { db in try row.insert(db, onConflict: .ignore) }
    }

    /// Forgets a peer. Throws `notFound` if it was not remembered.
    public func removePeer(_ url: String) throws(SyncNodeError) {
        let removed = try writeLocal { db in try PeerRow.deleteOne(db, key: url) }
        if !removed { throw SyncNodeError(.notFound, "no remembered peer \(url)").next(.listPeers) }
    }

    public func peers() throws(SyncNodeError) -> [PeerRecord] {
        try read { db in try PeerRow.order(Column("url")).fetchAll(db).map(\.record) }
    }

    /// Records the outcome of a round with `url` if it is a remembered peer (`peer add`); a URL given
    /// for one `sync` is never remembered, so a typo or a stranger's address does not stay.
    public func recordSync(_ url: String, _ outcome: SyncOutcome) throws(SyncNodeError) {
        let now = Int64(clock.nowMillis())
        try writeLocal { db in
            guard var row = try PeerRow.fetchOne(db, key: url) else { return }
            row.lastAttempt = now
            switch outcome {
            case .success(let peer, let vector, let skew, let sent, let received):
                row.node = Data(peer.node.bytes)
                row.label = peer.label
                row.lastSuccess = now
                row.lastError = nil
                row.skew = skew
                row.vector = String(decoding: (try? WireCodec.encodeMessage(vector)) ?? [], as: UTF8.self)
                row.sent += sent
                row.received += received
            case .failure(let message):
                row.lastError = message
            }
            try row.update(db)
        }
    }

    /// Records the clock skew seen at the start of a round with a remembered peer.
    func recordSkew(_ url: String, _ skewMillis: Int64) throws(SyncNodeError) {
        try writeLocal { db in
            guard var row = try PeerRow.fetchOne(db, key: url) else { return }
            row.skew = skewMillis
            try row.update(db)
        }
    }

    /// Records callers' contacts, each over the one held before (`NodeContact.over`: an own-seq
    /// already known is kept when a contact carries none).
    func saveContacts(_ contacts: [NodeID: NodeContact]) throws(SyncNodeError) {
        guard !contacts.isEmpty else { return }
        try writeLocal { db in
            for (node, contact) in contacts {
                let older = try ContactRow.fetchOne(db, key: Data(node.bytes))?.contact
                try ContactRow(node, contact.over(older)).insert(db, onConflict: .replace)
            }
        }
    }

    /// The last contact of every node that called this one.
    public func contacts() throws(SyncNodeError) -> [NodeID: NodeContact] {
        try read { db in
            var out: [NodeID: NodeContact] = [:]
            for row in try ContactRow.fetchAll(db) {
                if let node = NodeID(bytes: row.node) { out[node] = row.contact }
            }
            return out
        }
    }

    /// A warning for the person about to record work, when the last sync with a peer found this
    /// node's clock far from that peer's: work stamped with a wrong clock wins or loses conflicts
    /// wrongly, and peers refuse work stamped far ahead of them.
    public func clockWarning() throws(SyncNodeError) -> String? {
        let limit = Int64(maxDriftMillis / 2)
        guard
            let worst = try peers().filter({ ($0.skewMillis ?? 0).magnitude > limit }).max(by: { $0.skewMillis!.magnitude < $1.skewMillis!.magnitude }
            ),
            let skew = worst.skewMillis
        else { return nil }
        let direction = skew < 0 ? "ahead of" : "behind"
        return
            "at the last sync with \(worst.label ?? worst.url), this node's clock was \(DurationText.describe(millis: skew.magnitude)) \(direction) that peer's; check this computer's date and time (work recorded with a wrong clock is refused or ordered wrongly)"
    }

    /// How many transactions this node holds that the peer did not have at the last confirmation.
    public func unsentCount(to peer: PeerRecord) throws(SyncNodeError) -> UInt64 {
        let mine = try vector()
        return mine.count(beyond: peer.vector ?? VersionVector())
    }

    /// Highest seq of this node's own transactions: changes when a local write commits.
    public func ownSeq() throws(SyncNodeError) -> UInt64 {
        try read { db in try heldSeq(db, origin: info.nodeID) }
    }
}
