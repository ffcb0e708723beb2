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

extension Store {
    /// Remembers a peer URL. Adding one already known changes nothing.
    public func addPeer(_ url: String) throws(SyncNodeError) {
        guard let parsed = URL(string: url), let scheme = parsed.scheme, ["http", "https"].contains(scheme.lowercased()), parsed.host != nil else {
            throw .invalid("'\(url.prefix(80))' is not an http:// or https:// URL of a peer, such as http://hq.example:8420")
        }
        try StorageErrors.map {
            try pool.write { db in
                try db.execute(sql: "INSERT OR IGNORE INTO peer (url, added) VALUES (?, ?)", arguments: [url, Int64(clock.nowMillis())])
            }
        }
    }

    /// Forgets a peer. Throws `notFound` if it was not remembered.
    public func removePeer(_ url: String) throws(SyncNodeError) {
        let removed = try StorageErrors.map {
            try pool.write { db in
                try db.execute(sql: "DELETE FROM peer WHERE url = ?", arguments: [url])
                return db.changesCount
            }
        }
        if removed == 0 { throw SyncNodeError(.notFound, "no remembered peer \(url)").next(.listPeers) }
    }

    public func peers() throws(SyncNodeError) -> [PeerRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM peer ORDER BY url").map { row in
                PeerRecord(
                    url: row["url"], added: UInt64(row["added"] as Int64), node: (row["node"] as Data?).flatMap { NodeID(bytes: $0) },
                    label: row["label"], lastAttempt: (row["last_attempt"] as Int64?).map(UInt64.init),
                    lastSuccess: (row["last_success"] as Int64?).map(UInt64.init), lastError: row["last_error"], skewMillis: row["skew_ms"],
                    vector: (row["vector"] as String?).flatMap { try? WireCodec.decodeMessage(VersionVector.self, from: Array($0.utf8)) },
                    sent: row["sent"], received: row["received"])
            }
        }
    }

    /// Records the outcome of a round with `url` if it is a remembered peer (`peer add`); a URL given
    /// for one `sync` is never remembered, so a typo or a stranger's address does not stay.
    public func recordSync(_ url: String, _ outcome: SyncOutcome) throws(SyncNodeError) {
        let now = Int64(clock.nowMillis())
        try StorageErrors.map {
            try pool.write { db in
                switch outcome {
                case .success(let peer, let vector, let skew, let sent, let received):
                    let vectorText = String(decoding: (try? WireCodec.encodeMessage(vector)) ?? [], as: UTF8.self)
                    try db.execute(
                        sql: """
                            UPDATE peer SET node = ?, label = ?, last_attempt = ?, last_success = ?, last_error = NULL, skew_ms = ?, vector = ?,
                            sent = sent + ?, received = received + ? WHERE url = ?
                            """, arguments: [Data(peer.node.bytes), peer.label, now, now, skew, vectorText, sent, received, url])
                case .failure(let message):
                    try db.execute(sql: "UPDATE peer SET last_attempt = ?, last_error = ? WHERE url = ?", arguments: [now, message, url])
                }
            }
        }
    }

    /// Records the clock skew seen at the start of a round with a remembered peer.
    func recordSkew(_ url: String, _ skewMillis: Int64) throws(SyncNodeError) {
        try StorageErrors.map {
            try pool.write { db in try db.execute(sql: "UPDATE peer SET skew_ms = ? WHERE url = ?", arguments: [skewMillis, url]) }
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
