/// The assessment view's definitions (东西部扶贫协作考核: 资金投入, 人才支援, 产业合作, 劳务协作,
/// 携手奔小康, 组织领导), as the plan states them: each indicator is a money figure of the funds
/// report, or a count or sum of one activity kind's entries whose fields take given values. The
/// view's every number comes from one of these, computed by `Assessment.Tally`.
public enum Assessment {
    public struct Heading: Codable, Equatable, Sendable {
        public var id: String
        public var name: String
        public var indicators: [Indicator]

        public init(id: String, name: String, indicators: [Indicator]) {
            self.id = id
            self.name = name
            self.indicators = indicators
        }
    }

    public struct Indicator: Codable, Equatable, Sendable {
        public var id: String
        public var name: String
        /// What the figure counts (人, 人次, 次, 家, 对); a money figure is in 万元.
        public var unit: String?
        /// A money figure of the funds report (`Programme.moneyColumns`).
        public var money: String?
        /// Otherwise: entries of this kind...
        public var kind: String?
        /// ...whose fields take one of these values...
        public var matching: [String: [String]]?
        /// ...summing this whole-number or money field, or counting the entries when absent.
        public var sum: String?

        enum CodingKeys: String, CodingKey {
            case id, name, unit, money, kind, sum
            case matching = "where"
        }

        public init(
            id: String, name: String, unit: String? = nil, money: String? = nil, kind: String? = nil, matching: [String: [String]]? = nil,
            sum: String? = nil
        ) {
            self.id = id
            self.name = name
            self.unit = unit
            self.money = money
            self.kind = kind
            self.matching = matching
            self.sum = sum
        }

        /// Whether an entry of `kind` with these fields counts under this indicator.
        public func counts(kind entryKind: String, _ fields: [String: Value]) -> Bool {
            guard money == nil, kind == entryKind else { return false }
            for (field, values) in matching ?? [:] {
                guard case .text(let v)? = fields[field], values.contains(v) else { return false }
            }
            return true
        }

        /// What the entry adds: 1 for a count, else its field (stored as `NAME_fen` for money).
        public func amount(_ fields: [String: Value], in kind: Programme.Kind?) -> Int64 {
            guard let sum else { return 1 }
            let stored = kind?.fields.first { $0.name == sum }?.storedName ?? sum
            if case .int(let n)? = fields[stored] { return n }
            return 0
        }

        /// Whether its figures are amounts (fen, shown in 万元).
        public func isMoney(in plan: Programme) -> Bool {
            if money != nil { return true }
            guard let sum, let kind else { return false }
            return plan.kind(kind)?.fields.first { $0.name == sum }?.type == .money
        }
    }
}

extension Programme {
    /// What is wrong with the assessment definitions: each indicator names a money column, or a
    /// kind of the activities ledger with fields and values it has.
    func assessmentProblems() -> [String] {
        guard let headings = assessment else { return [] }
        var out: [String] = []
        var ids = Set<String>()
        for heading in headings {
            if heading.name.trimmingCharacters(in: .whitespaces).isEmpty { out.append("assessment heading \(heading.id) has no name") }
            if heading.indicators.isEmpty { out.append("assessment heading \(heading.id) has no indicator") }
            for i in heading.indicators {
                let name = "assessment indicator \(heading.id)/\(i.id)"
                if !ids.insert(heading.id + "/" + i.id).inserted { out.append("\(name) appears twice") }
                out += indicatorProblems(i, name)
            }
        }
        return out
    }

    private func indicatorProblems(_ i: Assessment.Indicator, _ name: String) -> [String] {
        if let money = i.money {
            var out = Self.moneyColumns.contains(money) ? [] : ["\(name): money '\(money)' is no column of the funds report"]
            if i.kind != nil || i.sum != nil || i.matching != nil { out.append("\(name) gives money and a kind; give one") }
            return out
        }
        guard let kindID = i.kind else { return ["\(name) needs `money` or `kind`"] }
        guard let kind = kind(kindID), kind.ledger == "activities" else { return ["\(name): \(kindID) is no kind of the activities ledger"] }
        var out: [String] = []
        if let sum = i.sum, !kind.fields.contains(where: { $0.name == sum && ($0.type == .int || $0.type == .money) }) {
            out.append("\(name) sums \(sum), which is no whole-number or money field of \(kindID)")
        }
        for (field, values) in i.matching ?? [:] {
            guard let f = kind.fields.first(where: { $0.name == field }), let allowed = f.values else {
                out.append("\(name): \(kindID) has no field \(field) with a list of values")
                continue
            }
            for v in values where !allowed.contains(v) { out.append("\(name): \(v) is not a value of \(kindID).\(field)") }
        }
        return out
    }
}
