import Foundation
import SyncProtocol

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
    /// HQ's review of it, once that has arrived: approved, or returned with a note.
    public var review: SubmissionReview?
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
        let reviews = try submissionReviews()
        return transactions.reversed().map { t in
            let state: OwnWork.State =
                refused[t.seq] != nil ? .refused : t.seq <= atHQ ? .atHQ : t.seq <= sent ? .sent : .notYetSent
            return OwnWork(seq: t.seq, time: t.hlc.millis, changes: t.changes, state: state, reason: refused[t.seq], review: reviews[t.hlc])
        }
    }
}
