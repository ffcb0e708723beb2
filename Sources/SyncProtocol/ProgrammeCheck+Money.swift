/// What is implausible or inconsistent about an entry, in the plan's words. The same findings
/// stop an entry at entry (refused, or recorded only when confirmed) and list one that arrived
/// from elsewhere in HQ's review: an older version, the raw `ledger` command or a hostile county
/// can send anything, and nothing that arrives is dropped.
public struct Finding: Sendable, Equatable, CustomStringConvertible {
    public enum Weight: Sendable, Equatable {
        /// Cannot be right: refused at entry.
        case refused
        /// Unlikely: recorded at entry only when the clerk confirms it.
        case needsConfirmation
    }

    public var weight: Weight
    /// The field it is about, when it is one field's.
    public var field: String?
    public var message: String

    public init(_ weight: Weight, field: String?, _ message: String) {
        self.weight = weight
        self.field = field
        self.message = message
    }

    public var description: String { message }
}

extension ProgrammeCheck {
    /// What is implausible about one entry of `kind` by itself (its stored fields): an amount
    /// that is not positive (a correction is a reversal) or above the county's aid for the whole
    /// programme, a count above what the plan finds plausible or above the field it is part of,
    /// a day or budget year outside the plan's years. Reversals are judged by the ledger rule.
    public func plausibility(kind: Programme.Kind, fields: [String: Value]) -> [Finding] {
        guard kind.isLedger, !MoneyModel.isReversal(fields) else { return [] }
        var out: [Finding] = []
        let county = fields["county"].flatMap { if case .text(let c) = $0 { plan.county(c) } else { nil } }
        for f in plan.fields(of: kind) {
            guard case .int(let n)? = fields[f.storedName] else { continue }
            let label = f.label ?? f.name
            if f.type == .money {
                let bound = moneyBound(county: county)
                if n <= 0 {
                    out.append(
                        Finding(
                            .refused, field: f.name,
                            "\(label)\(Money.wan(n))万元不是正数：已记录的款项有误，请对原记录“更正”或“撤销”，不要记负数"))
                } else if n > bound {
                    out.append(
                        Finding(
                            .needsConfirmation, field: f.name,
                            "\(label)\(Money.wan(n))万元超过\(county?.name ?? "任何一县")整个帮扶期的援助总额\(Money.wan(bound))万元"))
                }
            }
            if let above = f.confirmAbove, n > above {
                out.append(Finding(.needsConfirmation, field: f.name, "\(label)\(n)超过合理上限\(above)"))
            }
            if let other = f.atMost, case .int(let limit)? = fields[other], n > limit {
                let otherLabel = plan.fields(of: kind).first { $0.name == other }?.label ?? other
                out.append(Finding(.refused, field: f.name, "\(label)\(n)多于\(otherLabel)\(limit)"))
            }
        }
        let years = "\(plan.yearRange.lowerBound)–\(plan.yearRange.upperBound)"
        // A kind that names its year (a target) counts by that year, not by the day it was set.
        if !kind.fields.contains(where: { $0.type == .year }), case .text(let date)? = fields["date"], Self.isDate(date),
            let year = MoneyModel.fourDigits(String(date.prefix(4))),
            !plan.yearRange.contains(year)
        {
            out.append(Finding(.needsConfirmation, field: "date", "日期\(date)不在规划年度\(years)内"))
        }
        if kind.money != nil, !(MoneyModel.budgetYear(fields).map(plan.yearRange.contains) ?? false) {
            let field = kind.hasBudgetYear ? "budget_year" : "year"
            let hint = kind.hasBudgetYear ? "；请写明资金年度（budget_year，\(plan.yearRange.lowerBound)–\(plan.yearRange.upperBound)）" : ""
            out.append(
                Finding(.refused, field: field, "资金年度\(MoneyModel.budgetYear(fields).map(String.init) ?? "不明")不在规划年度\(years)内\(hint)"))
        }
        return out
    }

    /// The largest plausible amount of one entry for `county`: its aid over the whole programme
    /// (for an entry of no county of the plan, the largest county's).
    public func moneyBound(county: Programme.County?) -> Int64 {
        let bound = county.map(\.programmeAidFen) ?? plan.counties.map(\.programmeAidFen).max() ?? 0
        return max(bound, 1)
    }

    /// What this node knows that an entry's cross-checks need, read by the store: the project the
    /// entry names, its money so far, the county-year's disbursements and target.
    public struct MoneyFacts: Sendable {
        public var projectCounty: String?
        public var projectStage: String?
        public var projectAllocated = Total.zero
        public var projectDisbursed = Total.zero
        public var countyYearDisbursed = Total.zero
        public var countyYearTarget: Int64?
        /// Whether the supervision item or task the entry names exists here.
        public var itemExists = true

        public init() {}
    }

    /// What does not fit what else is recorded (at entry, with the entry's own amount added):
    /// money booked to another county than its project's, disbursed beyond the project's
    /// allocation or the county's yearly target, spent on a project with nothing allocated or
    /// disbursed, a payment stage the project has not reached, a supervision event for an item
    /// that does not exist.
    public func crossChecks(kind: Programme.Kind, fields: [String: Value], facts: MoneyFacts) -> [Finding] {
        guard kind.isLedger, !MoneyModel.isReversal(fields) else { return [] }
        var out: [Finding] = []
        let amount = MoneyModel.amount(fields) ?? 0
        let county = fields["county"]?.description ?? ""
        let project = fields["project"]?.description
        if kind.money != nil, let project, let owner = facts.projectCounty, owner != county {
            out.append(
                Finding(.refused, field: "county", Self.wrongCounty(project: project, owner: plan.county(owner)?.name ?? owner, county: county, plan))
            )
        }
        if kind.money == "disbursed" {
            var disbursed = facts.projectDisbursed
            disbursed.add(amount)
            if let project, disbursed > facts.projectAllocated {
                out.append(
                    Finding(
                        .needsConfirmation, field: "amount",
                        Self.overAllocation(project: project, disbursed: disbursed, allocated: facts.projectAllocated)))
            }
            var yearly = facts.countyYearDisbursed
            yearly.add(amount)
            if let target = facts.countyYearTarget, yearly > Total(target), let year = MoneyModel.budgetYear(fields) {
                out.append(
                    Finding(
                        .needsConfirmation, field: "amount",
                        Self.overTarget(county: plan.county(county)?.name ?? county, year: year, disbursed: yearly, target: target)))
            }
            if let project, case .text(let stage)? = fields["stage"],
                let message = paymentBeforeStage(project: project, payment: stage, at: facts.projectStage)
            {
                out.append(Finding(.needsConfirmation, field: "stage", message))
            }
        }
        if kind.money == "spent", let project, !facts.projectAllocated.isPositive, !facts.projectDisbursed.isPositive {
            out.append(Finding(.needsConfirmation, field: "project", Self.spentUnfunded(project: project)))
        }
        if kind.fields.contains(where: { $0.name == "item" }), !facts.itemExists, case .text(let item)? = fields["item"] {
            out.append(Finding(.refused, field: "item", Self.noItem(item)))
        }
        return out
    }

    /// The stage a payment of each disbursement stage needs the project to have reached.
    public static let paymentStages = ["acceptance": "completed", "retention": "accepted"]

    /// Why a payment of stage `payment` does not fit a project at stage `at`, or nil.
    public func paymentBeforeStage(project: String, payment: String, at stage: String?) -> String? {
        guard let needed = Self.paymentStages[payment], let neededIndex = plan.stages.firstIndex(of: needed) else { return nil }
        let current = stage ?? plan.stages.first ?? "planned"
        if let index = plan.stages.firstIndex(of: current), index >= neededIndex { return nil }
        let names = ["acceptance": "验收款", "retention": "质保金"]
        return "项目\(project)尚在\(Self.stageName(current))阶段，不应拨付\(names[payment] ?? payment)（须\(Self.stageName(needed))后）"
    }

    /// A project stage in words.
    public static func stageName(_ stage: String) -> String {
        [
            "planned": "计划", "approved": "立项", "started": "开工", "completed": "完工", "accepted": "验收", "handed_over": "移交",
            "suspended": "暂停", "cancelled": "取消",
        ][stage] ?? stage
    }

    public static func wrongCounty(project: String, owner: String, county: String, _ plan: Programme) -> String {
        "项目\(project)属于\(owner)，款项却记在\(plan.county(county)?.name ?? (county.isEmpty ? "未指明的县" : county))"
    }

    public static func overAllocation(project: String, disbursed: Total, allocated: Total) -> String {
        "项目\(project)拨付\(wan(disbursed))万元，超过安排的\(wan(allocated))万元"
    }

    public static func overTarget(county: String, year: Int, disbursed: Total, target: Int64) -> String {
        "\(county)\(year)年度拨付\(wan(disbursed))万元，超过年度目标\(Money.wan(target))万元"
    }

    public static func spentUnfunded(project: String) -> String { "项目\(project)尚无资金安排或拨付，却有支出" }

    public static func noItem(_ item: String) -> String { "没有督办事项或任务\(item)" }

    /// A total in 万元 (or words when it is beyond what a report shows).
    public static func wan(_ total: Total) -> String { total.int64.map(Money.wan) ?? "超出范围的" }
}
