import Foundation

/// A programme description: the counties with their record-id prefixes and yearly aid, the sites,
/// the work areas with their lead units, and the kinds of records and entries with their fields.
/// It is data (a JSON file; the 2017 plan is embedded as the default), replicated by HQ, so every
/// node validates and labels the same way. Validation never decides a merge: data that does not
/// fit the plan is applied and listed for review.
public struct Programme: Codable, Equatable, Sendable {
    public var programme: String
    public var version: Int
    public var title: String
    /// First and last year of the programme.
    public var years: [Int]
    public var counties: [County]
    public var sites: [Site]
    public var workAreas: [WorkArea]
    /// Project stages in their forward order.
    public var stages: [String]
    /// Stages outside the forward order (suspended, cancelled): reachable from any stage.
    public var sideStages: [String]
    public var kinds: [Kind]
    /// Projects the plan itself names (its first batch), as the fields of a `project` record.
    public var firstBatchProjects: [[String: String]]?
    /// The plan's groups of member units (帮扶载体单位, 专项工作组, 帮扶保障组) and what each unit does.
    public var groups: [Group]?
    /// The words people read for the values a field takes (`stage`: `started` → 在建), by field
    /// name, or by `kind.field` where one kind's values mean something else: reports, pages and
    /// forms show these, and keep the value for machines.
    public var valueLabels: [String: [String: String]]?
    /// The leading group's assessment view (东西部扶贫协作考核): headings, each with indicators
    /// counted from the plan's own entries (`Assessment`).
    public var assessment: [Assessment.Heading]?

    /// The word for `value` of `field` (of `kind`), or the value itself when the plan has none.
    public func label(_ field: String, _ value: String, kind: String? = nil) -> String {
        kind.flatMap { valueLabels?["\($0).\(field)"]?[value] } ?? valueLabels?[field]?[value] ?? value
    }

    /// A group of units the plan names, each with its part.
    public struct Group: Codable, Equatable, Sendable {
        public var id: String
        public var name: String
        public var units: [Unit]

        public struct Unit: Codable, Equatable, Sendable {
            public var unit: String
            /// `lead` (牵头) or `partner` (配合); nil where the plan gives none.
            public var role: String?
            /// What the unit does in the group, as the plan says it.
            public var duty: String?
        }
    }

    public struct County: Codable, Equatable, Sendable {
        public var id: String
        public var name: String
        public var nameEn: String?
        public var province: String
        public var carrierUnit: String
        public var prefixes: [String]
        /// Aid budgeted per year, in 万元, keyed by year.
        public var yearlyAidWan: [String: Int64]

        /// The aid over the whole programme, in fen (an amount above it is implausible).
        public var programmeAidFen: Int64 {
            yearlyAidWan.values.reduce(Int64(0)) { sum, wan in
                let (fen, o1) = wan.multipliedReportingOverflow(by: Money.fenPerWan)
                let (total, o2) = sum.addingReportingOverflow(fen)
                return o1 || o2 ? .max : total
            }
        }

        /// The yearly aid in fen, by year.
        public var yearlyAidFen: [Int: Int64] {
            Dictionary(
                yearlyAidWan.compactMap { k, v in
                    Int(k).map { ($0, v.multipliedReportingOverflow(by: Money.fenPerWan).overflow ? Int64.max : v * Money.fenPerWan) }
                }, uniquingKeysWith: { a, _ in a })
        }
    }

    public struct Site: Codable, Equatable, Sendable {
        public var id: String
        public var role: Role
        public var name: String
    }

    public struct WorkArea: Codable, Equatable, Sendable {
        public var id: String
        public var name: String
        public var nameEn: String?
        public var leadUnit: String
        /// The units that support the lead (配合单位).
        public var partnerUnits: [String]?
    }

    public enum FieldType: String, Codable, Sendable {
        case text, int, real, money, date, year, county
        case workArea = "work_area"
        case project, stage
    }

    public struct Field: Codable, Equatable, Sendable {
        public var name: String
        public var type: FieldType
        public var required: Bool?
        public var values: [String]?
        public var min: Int64?
        public var max: Int64?
        public var label: String?
        /// A count above this is implausible: refused at entry unless confirmed, listed for review.
        public var confirmAbove: Int64?
        /// The name of a field of the same entry this one may not exceed (of whom poor ≤ people).
        public var atMost: String?

        public init(
            name: String, type: FieldType, required: Bool? = nil, values: [String]? = nil, min: Int64? = nil, max: Int64? = nil, label: String? = nil,
            confirmAbove: Int64? = nil, atMost: String? = nil
        ) {
            self.name = name
            self.type = type
            self.required = required
            self.values = values
            self.min = min
            self.max = max
            self.label = label
            self.confirmAbove = confirmAbove
            self.atMost = atMost
        }

        /// The name the value is stored under: money is kept in integer fen, as `<name>_fen`.
        public var storedName: String { type == .money ? name + "_fen" : name }
        public var isRequired: Bool { required ?? false }
    }

    public struct Kind: Codable, Equatable, Sendable {
        public var id: String
        public var name: String
        public var nameEn: String?
        /// Records of this kind live in this collection (projects, tasks, supervision items)...
        public var collection: String?
        /// ...or entries of this kind are appended to this ledger (events, money, activities).
        public var ledger: String?
        /// For money kinds: which column of the funds report the amount counts in.
        public var money: String?
        /// The work area an entry of this kind counts under unless it names one.
        public var workArea: String?
        public var fields: [Field]
        public var example: String?

        public var isLedger: Bool { ledger != nil }
        /// A money kind whose entries count against a budget year of their own (`budget_year`):
        /// every money kind but one that names its year (the target).
        public var hasBudgetYear: Bool { money != nil && !fields.contains { $0.type == .year } }
    }

    // MARK: lookups

    public func county(_ id: String) -> County? { counties.first { $0.id == id } }
    public func kind(_ id: String) -> Kind? { kinds.first { $0.id == id } }
    public func workArea(_ id: String) -> WorkArea? { workAreas.first { $0.id == id } }
    /// The stages a project moves through and the side stages it may take.
    public var allStages: [String] { stages + sideStages }
    public var yearRange: ClosedRange<Int> { (years.first ?? 2016)...(years.last ?? years.first ?? 2016) }

    /// Kinds whose entries go to `ledger`.
    public func kinds(inLedger ledger: String) -> [Kind] { kinds.filter { $0.ledger == ledger } }

    /// The money kinds (their ledgers feed the funds report).
    public var moneyKinds: [Kind] { kinds.filter { $0.money != nil && $0.ledger != nil } }

    /// The fields every entry carries besides its kind's own: the county it is for, the day it
    /// happened (apart from when it was typed) and, optionally, the work area it counts under.
    public static let entryFields: [Field] = [
        Field(name: "county", type: .county, required: true, label: "县"),
        Field(name: "date", type: .date, required: true, label: "日期"),
        Field(name: "work_area", type: .workArea, label: "工作领域"),
    ]

    /// The field a money entry names its budget year (资金年度) in: when it is not given, the year
    /// of the entry's date, if that is a year of the plan (`MoneyModel.budgetYear`).
    public static let budgetYearField = Field(name: "budget_year", type: .year, label: "资金年度")

    /// Every field an input of `kind` may give.
    public func fields(of kind: Kind) -> [Field] {
        guard kind.isLedger else { return kind.fields }
        var out = Self.entryFields
        for f in kind.fields where !out.contains(where: { $0.name == f.name }) { out.append(f) }
        if kind.hasBudgetYear { out.append(Self.budgetYearField) }
        out.append(Field(name: "kind", type: .text, label: "类型"))
        return out
    }

    /// Problems with the plan itself (loading a plan file refuses one with any).
    public func problems() -> [String] {
        var out: [String] = []
        if programme.isEmpty { out.append("the plan has no `programme` name") }
        if years.isEmpty || years.count > 2 || (years.count == 2 && years[0] > years[1]) {
            out.append("`years` must be [first, last]")
        }
        if counties.isEmpty { out.append("the plan names no county") }
        // Ids people, records and reports rely on: each once, none empty.
        func repeated(_ ids: [String]) -> [String] { Dictionary(grouping: ids, by: { $0 }).filter { $1.count > 1 }.keys.sorted() }
        for id in repeated(counties.map(\.id)) { out.append("county \(id) appears twice") }
        for id in repeated(workAreas.map(\.id)) { out.append("work area \(id) appears twice") }
        for id in repeated(sites.map(\.id)) { out.append("site \(id) appears twice") }
        for id in repeated(allStages) { out.append("stage \(id) appears twice") }
        for id in repeated((firstBatchProjects ?? []).compactMap { $0["id"] }) { out.append("first-batch project \(id) appears twice") }
        for id in repeated((groups ?? []).map(\.id)) { out.append("group \(id) appears twice") }
        for group in groups ?? [] {
            if group.units.isEmpty { out.append("group \(group.id) names no unit") }
            for unit in group.units where unit.role.map({ !["lead", "partner"].contains($0) }) ?? false {
                out.append("group \(group.id): \(unit.unit)'s role '\(unit.role!)' is neither lead nor partner")
            }
        }
        if stages.isEmpty { out.append("`stages` lists no stage: projects would have none to be at") }
        for c in counties { out += countyProblems(c) }
        // A record id names its county by its prefix: no id may fit two counties.
        for (i, a) in counties.enumerated() {
            for b in counties[(i + 1)...] {
                for p in a.prefixes where !p.isEmpty {
                    for q in b.prefixes where !q.isEmpty && (p.hasPrefix(q) || q.hasPrefix(p)) {
                        out.append("counties \(a.id) and \(b.id) share record ids: prefixes '\(p)' and '\(q)' overlap")
                    }
                }
            }
        }
        if !sites.contains(where: { $0.role == .hq }) { out.append("the plan has no site with role hq (the leading group's office)") }
        for site in sites where site.role == .county && county(site.id) == nil {
            out.append("site \(site.id) is a county's, but no county has the id \(site.id)")
        }
        out += firstBatchProblems()
        out += kindProblems()
        out += assessmentProblems()
        // The funds report sums a money ledger whole into its kind's column: two money kinds in
        // one ledger would each count the other's amounts.
        for (ledger, sharing) in Dictionary(grouping: moneyKinds, by: { $0.ledger! }) where sharing.count > 1 {
            out.append(
                "money kinds \(sharing.map(\.id).joined(separator: " and ")) share the ledger \(ledger); give each money kind a ledger of its own")
        }
        return out
    }
    /// A county's id, name, prefixes and yearly aid.
    private func countyProblems(_ c: County) -> [String] {
        var out: [String] = []
        if c.id.trimmingCharacters(in: .whitespaces).isEmpty { out.append("a county has an empty id") }
        if c.name.trimmingCharacters(in: .whitespaces).isEmpty { out.append("county \(c.id) has no name") }
        if c.prefixes.isEmpty { out.append("county \(c.id) has no record-id prefix") }
        if c.prefixes.contains(where: { $0.isEmpty }) { out.append("county \(c.id) has an empty record-id prefix (it would match every record)") }
        for key in c.yearlyAidWan.keys where MoneyModel.fourDigits(key) == nil {
            out.append("county \(c.id): yearly_aid_wan key '\(key)' is not a year")
        }
        for (key, wan) in c.yearlyAidWan where !(0...Money.maxWan).contains(wan) {
            out.append("county \(c.id): yearly aid \(wan)万 for \(key) is not between 0 and \(Money.maxWan)万")
        }
        if years.count == 2, years[0] <= years[1] {
            for key in c.yearlyAidWan.keys.sorted() {
                if let year = MoneyModel.fourDigits(key), !yearRange.contains(year) {
                    out.append("county \(c.id): aid for \(key), outside the plan's years \(years[0])–\(years[1])")
                }
            }
            for year in yearRange where c.yearlyAidWan[String(year)] == nil {
                out.append("county \(c.id) has no yearly aid for \(year) (give 0 for a year without aid)")
            }
        }
        return out
    }

    /// Each kind once, stored one way, counted under a known work area and money column.
    private func kindProblems() -> [String] {
        var out: [String] = []
        var seen = Set<String>()
        for k in kinds {
            if !seen.insert(k.id).inserted { out.append("kind \(k.id) appears twice") }
            if (k.collection == nil) == (k.ledger == nil) { out.append("kind \(k.id) needs exactly one of `collection` or `ledger`") }
            if let w = k.workArea, workArea(w) == nil { out.append("kind \(k.id) counts under unknown work area \(w)") }
            for f in k.fields {
                if let other = f.atMost, !k.fields.contains(where: { $0.name == other && $0.type == .int }) {
                    out.append("kind \(k.id): field \(f.name) is at most \(other), which is not a whole-number field of the kind")
                }
                if f.confirmAbove != nil, f.type != .int { out.append("kind \(k.id): confirm_above is for whole-number fields, not \(f.name)") }
            }
            if let column = k.money, !Self.moneyColumns.contains(column) {
                out.append(
                    "kind \(k.id) counts its amounts in '\(column)', which is no column of the funds report (\(Self.moneyColumns.joined(separator: ", ")))"
                )
            }
        }
        return out
    }
}

extension Programme {
    /// The funds report's columns, which a money kind's `money` names.
    public static let moneyColumns = ["target", "allocated", "disbursed", "spent", "donated"]

    /// What is wrong with the plan's first-batch projects: each must be a project a county could
    /// record (its county's prefix, a known work area, category and stage).
    func firstBatchProblems() -> [String] {
        var out: [String] = []
        let categories = kind("project")?.fields.first { $0.name == "category" }?.values
        for (n, p) in (firstBatchProjects ?? []).enumerated() {
            let id = p["id"] ?? ""
            let name = id.isEmpty ? "first-batch project \(n + 1)" : "first-batch project \(id)"
            if id.isEmpty { out.append("\(name) has no id") }
            if (p["name"] ?? "").trimmingCharacters(in: .whitespaces).isEmpty { out.append("\(name) has no name") }
            if let c = p["county"].flatMap(county) {
                if !id.isEmpty, !c.prefixes.contains(where: { !$0.isEmpty && id.hasPrefix($0) }) {
                    out.append("\(name) is \(c.id)'s, but its id has none of \(c.id)'s prefixes (\(c.prefixes.joined(separator: ", ")))")
                }
            } else {
                out.append("\(name) names no county of the plan ('\(p["county"] ?? "")')")
            }
            if let area = p["work_area"], workArea(area) == nil { out.append("\(name): no work area '\(area)' in the plan") }
            if let category = p["category"], let categories, !categories.contains(category) {
                out.append("\(name): no category '\(category)' (categories: \(categories.joined(separator: ", ")))")
            }
            if let stage = p["stage"], !allStages.contains(stage) { out.append("\(name): no stage '\(stage)' in the plan") }
        }
        return out
    }
}

/// Amounts: integers in fen (1 元 = 100 fen; 1 万元 = 1,000,000 fen).
public enum Money {
    public static let fenPerYuan: Int64 = 100
    public static let fenPerWan: Int64 = 1_000_000
    /// The largest yearly aid a plan may name, in 万元 (10^8 万元 = 1 万亿元).
    public static let maxWan: Int64 = 100_000_000

    /// Parses `100万`, `100万元`, `12.5万`, `50000元`, `1,250.50元` into fen; nil with the reason otherwise.
    public static func parse(_ text: String) -> Result<Int64, Reason> {
        var s = text.replacingOccurrences(of: ",", with: "").replacingOccurrences(of: " ", with: "")
        let scale: Int64
        if s.hasSuffix("万元") {
            s.removeLast(2)
            scale = fenPerWan
        } else if s.hasSuffix("万") {
            s.removeLast()
            scale = fenPerWan
        } else if s.hasSuffix("元") {
            s.removeLast()
            scale = fenPerYuan
        } else {
            return .failure(
                Reason("'\(text)' has no unit: write the amount in 万元 or 元, e.g. 100万 or 50000元", zh: "“\(text)”没有单位：金额请写万元或元，如 100万 或 50000元"))
        }
        let negative = s.hasPrefix("-")
        if negative { s.removeFirst() }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let whole = Int64(parts[0])
        else { return .failure(Reason("'\(text)' is not an amount: write digits with 万 or 元, e.g. 12.5万", zh: "“\(text)”不是金额：请写数字加万或元，如 12.5万")) }
        var fen = whole.multipliedReportingOverflow(by: scale)
        if parts.count == 2 {
            let digits = parts[1]
            let places = scale == fenPerWan ? 6 : 2
            guard digits.count <= places, let fraction = Int64(digits.isEmpty ? "0" : String(digits)) else {
                return .failure(
                    Reason(
                        "'\(text)' has a fraction of a fen: amounts are whole fen (at most \(places) decimals with \(scale == fenPerWan ? "万" : "元"))",
                        zh: "“\(text)”不足一分：金额以分为单位（用\(scale == fenPerWan ? "万" : "元")时最多\(places)位小数）"))
            }
            var unit: Int64 = 1
            for _ in 0..<(places - digits.count) { unit *= 10 }
            let add = (fraction * unit).addingReportingOverflow(fen.partialValue)
            fen = (add.partialValue, fen.overflow || add.overflow)
        }
        guard !fen.overflow, fen.partialValue <= 9_000_000_000_000_000 else { return .failure(Reason("'\(text)' is too large", zh: "“\(text)”太大")) }
        return .success(negative ? -fen.partialValue : fen.partialValue)
    }

    /// `1234.50` (万元, two decimals), as HQ's reports show amounts.
    public static func wan(_ fen: Int64) -> String {
        let negative = fen < 0
        let cents = (fen.magnitude + 5_000) / 10_000  // hundredths of 万元, rounded half up
        let text = "\(cents / 100).\(cents % 100 < 10 ? "0" : "")\(cents % 100)"
        return negative && cents > 0 ? "-" + text : text
    }
}
