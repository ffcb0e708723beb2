/// An exact sum of 64-bit amounts or counts that never traps: it is kept in 128 bits (2^64
/// entries at the 64-bit extremes still fit), and a figure that does not fit the 64 bits a report
/// cell holds is reported as such (`int64` is nil), never wrapped or crashed on.
public struct Total: Sendable, Hashable, CustomStringConvertible {
    public private(set) var exact: Int128
    /// The sum went beyond 128 bits (it cannot from fewer than 2^64 terms); `exact` is then clamped.
    public private(set) var beyondRange: Bool

    public static let zero = Total(0)

    public init(_ value: Int64 = 0) {
        exact = Int128(value)
        beyondRange = false
    }

    public mutating func add(_ value: Int64) { add(Total(value)) }

    public mutating func subtract(_ value: Int64) { add(Total(value).negated) }

    public mutating func add(_ other: Total) {
        let (sum, overflow) = exact.addingReportingOverflow(other.exact)
        if overflow || other.beyondRange {
            beyondRange = true
            exact = other.exact < 0 ? .min : .max
        } else {
            exact = sum
        }
    }

    public static func + (a: Total, b: Total) -> Total {
        var out = a
        out.add(b)
        return out
    }

    public mutating func subtract(_ other: Total) { add(other.negated) }

    var negated: Total {
        var out = Total()
        out.exact = exact == .min ? .max : -exact
        out.beyondRange = beyondRange || exact == .min
        return out
    }

    /// The total as a report cell holds it, or nil when it does not fit 64 bits.
    public var int64: Int64? { beyondRange ? nil : Int64(exactly: exact) }

    public var isPositive: Bool { exact > 0 }

    public var description: String { beyondRange ? "超出128位" : String(exact) }

    public static func < (a: Total, b: Total) -> Bool { a.exact < b.exact }
    public static func > (a: Total, b: Total) -> Bool { a.exact > b.exact }
}

/// The money model: what a money entry is, whether and where it counts, what a reversal cancels,
/// a county-year's target, and what is implausible or inconsistent about an entry. Every figure
/// a node shows (reports, `project show`, the dashboard, the exports) is computed from these
/// definitions; where SQL keeps a projection for speed (`ledger_money`), a test holds it to them.
///
/// Amounts are integers in fen. Entries are never changed: a mistake is corrected by a reversal
/// (an entry naming the one it cancels, with the opposite amount) and, where needed, a new entry.
public enum MoneyModel {
    // MARK: what an entry is

    /// An entry is a reversal when it names an entry to reverse: `_reverses` present with any
    /// value but null. A reversal counts in no total itself; it takes the entry it cancels out
    /// of every total (`LedgerRule.reversals` decides which one, if any).
    public static func isReversal(_ fields: [String: Value]) -> Bool {
        guard let named = fields[Names.reversesField] else { return false }
        return named != .null
    }

    /// The amount an entry carries: an integer `amount_fen` (every money kind keeps it there).
    public static func amount(_ fields: [String: Value]) -> Int64? {
        if case .int(let fen)? = fields["amount_fen"] { return fen }
        return nil
    }

    /// The budget year (资金年度) an entry counts against: its `budget_year`, else its `year`
    /// (targets), else the year of its `date`. A field that is present but not a year (a
    /// number, or text of exactly four digits) gives no year: the entry counts in the county's
    /// row of amounts outside the plan's years and is listed for review.
    public static func budgetYear(_ fields: [String: Value]) -> Int? {
        for name in ["budget_year", "year"] {
            guard let value = fields[name], value != .null else { continue }
            switch value {
            case .int(let y): return Int(y)
            case .text(let t): return fourDigits(t)
            default: return nil
            }
        }
        if case .text(let date)? = fields["date"] { return fourDigits(String(decoding: date.utf8.prefix(4), as: UTF8.self)) }
        return nil
    }

    /// `text` read as a year when it is exactly four ASCII digits.
    public static func fourDigits(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        guard bytes.count == 4, bytes.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return bytes.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    /// Where an entry's amount counts: the county, budget year and project it names (each nil
    /// when the entry does not name one as text) and its amount; nil when it counts in no money
    /// total (a reversal, or no integer amount).
    public struct Placement: Sendable, Equatable {
        public var county: String?
        public var year: Int?
        public var project: String?
        public var stage: String?
        public var amount: Int64

        public init(county: String?, year: Int?, project: String?, stage: String?, amount: Int64) {
            self.county = county
            self.year = year
            self.project = project
            self.stage = stage
            self.amount = amount
        }
    }

    public static func placement(_ fields: [String: Value]) -> Placement? {
        guard !isReversal(fields), let amount = amount(fields) else { return nil }
        var placement = booking(fields)
        placement.amount = amount
        return placement
    }

    /// The county, budget year, project and stage an entry names (each nil when it names none
    /// as text), whether or not it counts; the amount is left 0.
    public static func booking(_ fields: [String: Value]) -> Placement {
        func text(_ name: String) -> String? { if case .text(let t)? = fields[name] { t } else { nil } }
        return Placement(county: text("county"), year: budgetYear(fields), project: text("project"), stage: text("stage"), amount: 0)
    }

    /// `part` as hundredths of a percent of `whole` (4550 = 45.50%), or nil when `whole` is not
    /// positive or the result does not fit 64 bits.
    public static func percent(_ part: Total, of whole: Total) -> Int64? {
        guard whole.isPositive, !part.beyondRange, !whole.beyondRange else { return nil }
        let (scaled, overflow) = part.exact.multipliedReportingOverflow(by: 10_000)
        guard !overflow else { return nil }
        return Int64(exactly: scaled / whole.exact)
    }

    // MARK: targets

    /// A county-year's target: the plan's yearly aid, unless HQ set another; the target set
    /// last (by clock) replaces the ones before it, which stay in the ledger as its history.
    public struct Target: Sendable, Equatable {
        public var fen: Int64
        /// The plan's yearly aid for the county and year, when the plan names one.
        public var plan: Int64?
        /// The entry that set it, when HQ set it.
        public var setBy: LedgerRule.Entry?

        /// Set by HQ to something other than the plan's figure.
        public var differsFromPlan: Bool { setBy != nil && fen != plan }
    }

    public struct CountyYear: Sendable, Hashable, Comparable {
        public var county: String
        public var year: Int

        public init(_ county: String, _ year: Int) {
            self.county = county
            self.year = year
        }

        public static func < (a: CountyYear, b: CountyYear) -> Bool { (a.county, a.year) < (b.county, b.year) }
    }

    /// Every county-year's target under `plan`, given the entries of the targets' ledger (with
    /// their reversals): the plan's figure for each county and year of the plan, replaced by the
    /// latest entry that sets one and is not reversed. A target entry outside the plan's counties
    /// or years sets nothing (the review lists it).
    public static func targets(plan: Programme, entries: [LedgerRule.Entry]) -> [CountyYear: Target] {
        var out: [CountyYear: Target] = [:]
        for county in plan.counties {
            for year in plan.yearRange {
                let fen = county.yearlyAidFen[year]
                out[CountyYear(county.id, year)] = Target(fen: fen ?? 0, plan: fen, setBy: nil)
            }
        }
        let verdicts = LedgerRule.reversals(entries)
        let cancelled = Set(verdicts.values.compactMap { if case .cancels(let i) = $0 { i } else { nil } })
        for (i, e) in entries.enumerated() where !cancelled.contains(i) {
            guard let p = placement(e.fields), let county = p.county, let year = p.year, let current = out[CountyYear(county, year)] else {
                continue
            }
            if let previous = current.setBy, previous.ts > e.ts { continue }
            out[CountyYear(county, year)] = Target(fen: p.amount, plan: current.plan, setBy: e)
        }
        return out
    }
}
