/// A version of a field that a replica keeps live: the winner, or a head (no held version replaced it).
public struct LiveVersion: Equatable, Sendable {
    public var ts: Timestamp
    /// The origin's seq of the transaction that wrote it.
    public var seq: UInt64
    public var value: Value
    public var isHead: Bool

    public init(ts: Timestamp, seq: UInt64, value: Value, isHead: Bool) {
        self.ts = ts
        self.seq = seq
        self.value = value
        self.isHead = isHead
    }
}

/// The merge rule of a last-writer-wins field as production runs it: incrementally, over the few
/// versions a replica keeps live, with every other version retired to history.
///
/// It is the rule `FieldRegister` states over the set of all versions (the winner is the greatest
/// timestamp; a head is a version nothing held replaced; a conflict is a head other than the winner
/// with a different value); the convergence tests compare the two on real stores. Every part of
/// the node that decides a winner, a head or a conflict (local writes, remote apply, queries, the
/// schema migration) calls this type, so the rule exists once.
public enum MergeRule {
    /// The version a reader sees: the greatest timestamp.
    public static func winner(_ live: [LiveVersion]) -> LiveVersion? { live.max { $0.ts < $1.ts } }

    /// Heads other than the winner whose value differs from the winner's, in timestamp order.
    public static func conflicts(_ live: [LiveVersion]) -> [LiveVersion] {
        guard live.count > 1, let w = winner(live) else { return [] }
        return live.filter { conflicts($0, with: w) }.sorted { $0.ts < $1.ts }
    }

    /// Whether a field's heads disagree with its winner.
    public static func isConflicted(_ live: [LiveVersion]) -> Bool {
        guard live.count > 1, let w = winner(live) else { return false }
        return live.contains { conflicts($0, with: w) }
    }

    /// A head other than the winner, with another value: concurrent writes that disagree.
    private static func conflicts(_ v: LiveVersion, with winner: LiveVersion) -> Bool {
        v.isHead && v.ts != winner.ts && v.value != winner.value
    }

    /// Splits versions into those a replica keeps live (heads and the winner) and those retired
    /// to history (replaced, and not the winner).
    public static func settle(_ versions: [LiveVersion]) -> (live: [LiveVersion], retired: [LiveVersion]) {
        guard let w = winner(versions)?.ts else { return ([], []) }
        var live: [LiveVersion] = []
        var retired: [LiveVersion] = []
        live.reserveCapacity(versions.count)
        for v in versions {
            if v.isHead || v.ts == w { live.append(v) } else { retired.append(v) }
        }
        return (live, retired)
    }

    /// The result of adding one version to a field.
    public struct Addition: Sendable {
        /// The field's live versions after the addition.
        public var live: [LiveVersion]
        /// Versions that stopped being live: they move to history.
        public var retired: [LiveVersion]
        /// Timestamps the new version replaced that are not live here: either already in history
        /// or not held yet (the caller remembers the latter, so the version arrives as replaced).
        public var notLive: [Timestamp]
    }

    /// Adds a version written at `ts` that knowingly replaced `replaces` to a field whose live
    /// versions are `live`. `alreadyReplaced` says that a version held earlier named `ts` as
    /// replaced (it arrived first), so the new version is born a non-head. Returns nil when the
    /// field already holds a version with that timestamp (an honest origin never reuses a clock).
    public static func add(
        ts: Timestamp, seq: UInt64, value: Value, replacing replaces: [Timestamp], alreadyReplaced: Bool, to live: [LiveVersion]
    ) -> Addition? {
        if live.contains(where: { $0.ts == ts }) { return nil }
        var versions = live
        var notLive: [Timestamp] = []
        for old in replaces {
            if let k = versions.firstIndex(where: { $0.ts == old }) {
                versions[k].isHead = false
            } else {
                notLive.append(old)
            }
        }
        versions.append(LiveVersion(ts: ts, seq: seq, value: value, isHead: !alreadyReplaced))
        let (kept, retired) = settle(versions)
        return Addition(live: kept, retired: retired, notLive: notLive)
    }
}
