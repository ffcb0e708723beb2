import Foundation
import SyncProtocol

/// HQ's review of a submission (审核): one transaction a node recorded, approved, or returned
/// with a note saying what to correct. Kept as a record of the `reviews` collection named by the
/// transaction's clock, which only HQ may write (`PolicyRules.reviewCollection`), so it replicates
/// to the county like any record and a later review of the same submission replaces the earlier.
public struct SubmissionReview: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        case approved, returned

        /// What people read.
        public var word: String { self == .approved ? "已通过" : "已退回" }
    }

    /// The reviewed transaction: its origin, sequence number and clock.
    public var origin: NodeID
    public var seq: UInt64
    public var clock: Timestamp
    public var state: State
    public var note: String?
    public var reviewer: String?
    public var date: String?
}

extension Store {
    /// Approves a submission, or returns it with a note (required: the county must learn what to
    /// correct). HQ only; the submission must be held here.
    public func reviewSubmission(origin: NodeID, seq: UInt64, state: SubmissionReview.State, note: String?, today: String)
        throws(SyncNodeError) -> Transaction
    {
        guard info.role == .hq else {
            throw SyncNodeError(.forbidden, "only HQ reviews submissions; this node is a \(info.role.rawValue) node")
        }
        let note = note?.trimmingCharacters(in: .whitespacesAndNewlines).prefix(1000)
        if state == .returned, note?.isEmpty ?? true {
            throw .invalid("a returned submission needs a note saying what to correct")
        }
        guard let t = try submission(origin: origin, seq: seq) else {
            throw SyncNodeError(.notFound, "no transaction \(origin.short)/\(seq) is held here; it arrives with a sync")
        }
        let fields: [FieldAssignment] = [
            .init("state", .text(state.rawValue)), .init("origin", .text(origin.hex)), .init("seq", .int(Int64(clamping: seq))),
            .init("note", note.map { .text(String($0)) } ?? .null), .init("reviewer", Self.author.map { .text(Self.authorName($0)) } ?? .null),
            .init("date", .text(today)),
        ]
        return try commit([.put(collection: PolicyRules.reviewCollection, recordID: t.hlc.hex, fields: fields)])
    }

    /// One transaction held here, by origin and sequence number.
    public func submission(origin: NodeID, seq: UInt64) throws(SyncNodeError) -> Transaction? {
        let held = try vector()
        guard seq > 0, held[origin] >= seq else { return nil }
        var since = VersionVector()
        for other in held.entries.keys where other != origin { since[other] = .max }
        since[origin] = seq - 1
        return try transactions(missingFrom: since, maxTransactions: 1).transactions.first { $0.transaction.seq == seq }?.transaction
    }

    /// Every review held here, by the reviewed transaction's clock.
    public func submissionReviews() throws(SyncNodeError) -> [Timestamp: SubmissionReview] {
        var out: [Timestamp: SubmissionReview] = [:]
        for r in try currentValues(PolicyRules.reviewCollection, fields: ["state", "origin", "seq", "note", "reviewer", "date"]) {
            guard let clock = Timestamp(hex: r.recordID), case .text(let s)? = r.values["state"], let state = SubmissionReview.State(rawValue: s),
                case .int(let seq)? = r.values["seq"], seq > 0
            else { continue }
            out[clock] = SubmissionReview(
                origin: clock.node, seq: UInt64(seq), clock: clock, state: state, note: r.values["note"].flatMap(Self.text),
                reviewer: r.values["reviewer"].flatMap(Self.text), date: r.values["date"].flatMap(Self.text))
        }
        return out
    }

    private static func text(_ v: Value) -> String? { if case .text(let t) = v { t } else { nil } }

    /// The latest transactions of the nodes whose work HQ reviews (every node but HQ's), newest
    /// first, at most `perNode` of each: what the review page lists.
    public func recentSubmissions(perNode: Int) throws(SyncNodeError) -> [Transaction] {
        let hqNodes = Set(try registry().filter { $0.role == .hq }.map(\.node))
        let held = try vector()
        var since = VersionVector()
        for (origin, top) in held.entries {
            since[origin] = hqNodes.contains(origin) || origin == info.nodeID ? .max : (top > UInt64(perNode) ? top - UInt64(perNode) : 0)
        }
        let found = try transactions(missingFrom: since).transactions.map(\.transaction)
        return found.filter { !$0.changes.isEmpty }.sorted { $0.hlc > $1.hlc }
    }
}
