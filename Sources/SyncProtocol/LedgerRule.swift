/// How ledger entries combine. An entry is identified by its ledger, its id *and its origin*: no
/// node can take over, replace or hide another node's entry by reusing its id.
public enum LedgerRule {
    /// Entries are immutable, so a second entry of one origin under an id that origin already used
    /// (only a faulty origin does that) does not replace the first: the earlier write is kept, on
    /// every replica. The caller keeps the other for review.
    public static func keeps(existing: Timestamp, over incoming: Timestamp) -> Bool { existing <= incoming }

    /// One entry of a ledger as a reader sees it.
    public struct Entry: Sendable, Equatable {
        public var entryID: String
        public var ts: Timestamp
        public var fields: [String: Value]

        public init(entryID: String, ts: Timestamp, fields: [String: Value]) {
            self.entryID = entryID
            self.ts = ts
            self.fields = fields
        }

        public var origin: NodeID { ts.node }
        public var county: Value? { fields["county"] }
        /// Whether it is a reversal (`MoneyModel.isReversal`: the one definition).
        public var isReversal: Bool { MoneyModel.isReversal(fields) }
        public var reverses: String? {
            if case .text(let id)? = fields[Names.reversesField] { return id }
            return nil
        }
        /// The origin of the entry a reversal names, when it names one (`_reverses_origin`).
        public var reversesOrigin: NodeID? {
            if case .text(let hex)? = fields[Names.reversesOriginField] { return NodeID(hex: hex) }
            return nil
        }
    }

    /// What a reversal entry does.
    public enum Reversal: Sendable, Equatable {
        /// It cancels the entry at this index.
        case cancels(Int)
        /// It cancels nothing, for this reason (it counts for nothing in totals).
        case invalid(String)
    }

    /// Decides, for every reversal among `entries` (keyed by index), which entry it cancels. A
    /// reversal cancels an entry of its ledger that is not itself a reversal, of the same county,
    /// carrying exactly the opposite of each of its numbers; an entry is cancelled once, by the
    /// earliest such reversal. The decision depends only on the set of entries, never on the order
    /// they arrived in, so every replica counts the same totals.
    public static func reversals(_ entries: [Entry]) -> [Int: Reversal] {
        var byID: [String: [Int]] = [:]
        for (i, e) in entries.enumerated() where !e.isReversal { byID[e.entryID, default: []].append(i) }
        var out: [Int: Reversal] = [:]
        var cancelledBy: [Int: Int] = [:]
        let order = entries.indices.filter { entries[$0].isReversal }.sorted { entries[$0].ts < entries[$1].ts }
        for r in order {
            let reversal = entries[r]
            switch target(of: reversal, among: (reversal.reverses.flatMap { byID[$0] } ?? []).map { ($0, entries[$0]) }) {
            case .invalid(let why):
                out[r] = .invalid(why)
            case .cancels(let t):
                if let earlier = cancelledBy[t] {
                    out[r] = .invalid("entry \(entries[t].entryID) is already reversed by \(entries[earlier].entryID)")
                } else {
                    cancelledBy[t] = r
                    out[r] = .cancels(t)
                }
            }
        }
        return out
    }

    /// The entry `reversal` cancels among the candidates with the id it names (index, entry), or
    /// why it cancels none. Local writes use it to refuse a wrong reversal before it is recorded.
    public static func target(of reversal: Entry, among candidates: [(Int, Entry)]) -> Reversal {
        guard let id = reversal.reverses else {
            return .invalid("its \(Names.reversesField) names no entry id (it holds \(reversal.fields[Names.reversesField] ?? .null))")
        }
        let named = reversal.reversesOrigin.map { origin in candidates.filter { $0.1.origin == origin } } ?? candidates
        guard !named.isEmpty else { return .invalid("there is no entry \(id) to reverse") }
        let sameCounty = named.filter { $0.1.county == reversal.county }
        guard let (index, target) = sameCounty.min(by: { $0.1.ts < $1.1.ts }) else {
            let county = named[0].1.county?.description ?? "(none)"
            return .invalid("entry \(id) belongs to county \(county); its reversal must carry county=\(county)")
        }
        let numbers = { (fields: [String: Value]) in
            fields.filter { if case .text = $0.value { return false } else { return $0.value != .null } }
        }
        let expected = numbers(target.fields).mapValues(negated)
        guard !expected.values.contains(.null) else { return .invalid("entry \(id) holds a number that has no opposite") }
        guard numbers(reversal.fields) == expected else {
            let wanted = expected.sorted { $0.key < $1.key }.map { "\($0.key):=\($0.value)" }.joined(separator: " ")
            return .invalid("a reversal of \(id) carries exactly the opposite of its numbers: \(wanted.isEmpty ? "none" : wanted)")
        }
        return .cancels(index)
    }

    private static func negated(_ value: Value) -> Value {
        switch value {
        case .int(let i): return i == .min ? .null : .int(-i)
        case .real(let d): return .real(-d)
        default: return value
        }
    }
}
