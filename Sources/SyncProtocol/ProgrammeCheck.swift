import Foundation

/// Turns what a clerk typed (`FIELD=VALUE` texts) into typed values of one kind of the plan, or
/// says everything that is wrong with it. Pure: what it needs to know of the node's data (which
/// projects exist, a project's current stage) comes in through `Context`.
public struct ProgrammeCheck: Sendable {
    public struct Problem: Equatable, Sendable, CustomStringConvertible {
        /// The field the problem is with, when it is one field's.
        public var field: String?
        public var message: String
        /// The same in Chinese, as a web page shows it.
        public var zh: String
        /// What the person can do about it.
        public var nextStep: NextStep?
        /// The field's name in the plan's words (参训人数), when the plan gives one.
        public var label: String?
        public var description: String { field.map { "\($0): \(message)" } ?? message }
        /// The problem in Chinese, headed by the field's word: `参训人数：“四十”不是整数`.
        public var chinese: String { (label ?? field).map { "\($0)：\(zh)" } ?? zh }

        public init(field: String?, message: String, zh: String? = nil, nextStep: NextStep? = nil, label: String? = nil) {
            self.field = field
            self.message = message
            self.zh = zh ?? message
            self.nextStep = nextStep
            self.label = label
        }
    }

    public struct Context: Sendable {
        /// The writing node's site and role (a county writes for itself only).
        public var site: String
        public var role: Role
        /// Today in the node's time zone, `YYYY-MM-DD` (the default date of an entry).
        public var today: String
        /// Whether a project with this id is known here.
        public var projectExists: @Sendable (String) -> Bool
        /// A project's current stage, if any.
        public var projectStage: @Sendable (String) -> String?

        public init(
            site: String, role: Role, today: String, projectExists: @escaping @Sendable (String) -> Bool = { _ in true },
            projectStage: @escaping @Sendable (String) -> String? = { _ in nil }
        ) {
            self.site = site
            self.role = role
            self.today = today
            self.projectExists = projectExists
            self.projectStage = projectStage
        }
    }

    /// Everything wrong with one input.
    public struct Problems: Error, Sendable {
        public var list: [Problem]
    }

    public let plan: Programme

    public init(_ plan: Programme) { self.plan = plan }

    /// The typed, stored fields of an input of `kind`, or every problem found.
    /// `force` allows a stage to move backwards (it then needs a `reason`).
    /// `partial`: an update of an existing record (required fields it already has need not be given).
    public func check(kind: Programme.Kind, input: [(String, String)], context: Context, force: Bool = false, partial: Bool = false)
        -> Result<[String: Value], Problems>
    {
        let fields = plan.fields(of: kind)
        var problems: [Problem] = []
        var out: [String: Value] = [:]
        var given: [String: String] = [:]
        for (name, text) in input {
            guard let field = fields.first(where: { $0.name == name }) else {
                let known = fields.map(\.name)
                let nearest = Self.nearest(name, in: known)
                let hint = nearest.map { "did you mean \($0)? " } ?? ""
                problems.append(
                    Problem(
                        field: name, message: "\(kind.id) has no field \(name); \(hint)its fields: \(known.joined(separator: ", "))",
                        zh: "\(kind.name)没有“\(name)”这一项；\(nearest.map { "是不是\($0)？" } ?? "")可填：\(known.joined(separator: "、"))"))
                continue
            }
            if given[name] != nil {
                problems.append(Problem(field: name, message: "given twice", zh: "填了两次", label: field.label))
                continue
            }
            given[name] = text
            switch typed(field, text, context) {
            case .success(let v): out[field.storedName] = v
            case .failure(let reason):
                problems.append(Problem(field: name, message: reason.text, zh: reason.zh, nextStep: reason.nextStep, label: field.label))
            }
        }
        // The defaults of a ledger entry (`defaultNote` says them in words for help texts).
        if kind.isLedger {
            if given["county"] == nil, context.role == .county { out["county"] = .text(context.site) }
            if given["date"] == nil { out["date"] = .text(context.today) }
            if given["work_area"] == nil, let w = kind.workArea { out["work_area"] = .text(w) }
            out["kind"] = .text(kind.id)
        }
        for f in fields where !partial && f.isRequired && out[f.storedName] == nil && !problems.contains(where: { $0.field == f.name }) {
            problems.append(
                Problem(
                    field: f.name, message: "is required (\(f.label ?? f.name), \(describe(f)))", zh: "必填（\(describeZh(f))）", label: f.label)
            )
        }
        if context.role == .county, case .text(let county)? = out["county"], county != context.site {
            let names = (plan.county(context.site)?.name ?? context.site, plan.county(county)?.name ?? county)
            problems.append(
                Problem(
                    field: "county", message: "a \(context.site) node records \(context.site)'s work only, not \(county)'s",
                    zh: "\(names.0)的节点只能记录\(names.0)的工作，不能记录\(names.1)的"))
        }
        // A stage never silently moves backwards.
        if kind.id == "project_event", case .text(let stage)? = out["stage"], case .text(let project)? = out["project"],
            let current = context.projectStage(project), let from = plan.stages.firstIndex(of: current), let to = plan.stages.firstIndex(of: stage),
            to < from
        {
            if !force {
                problems.append(
                    Problem(
                        field: "stage", message: "\(project) is at \(current); moving it back to \(stage) must be forced, with a reason",
                        zh: "\(project)已到“\(plan.label("stage", current))”；退回到“\(plan.label("stage", stage))”须确认并说明理由", nextStep: .forceWithReason))
            } else if out["reason"] == nil {
                problems.append(
                    Problem(
                        field: "reason", message: "moving \(project) back from \(current) to \(stage) needs a reason",
                        zh: "把\(project)从“\(plan.label("stage", current))”退回到“\(plan.label("stage", stage))”须说明理由", nextStep: .forceWithReason)
                )
            }
        }
        return problems.isEmpty ? .success(out) : .failure(Problems(list: problems))
    }

    /// How `check` fills a ledger entry's field that was not given, in words for help texts;
    /// `always` when every node fills it (a required field with such a default need not be typed).
    public static func defaultNote(kind: Programme.Kind, field: String) -> (text: String, always: Bool)? {
        guard kind.isLedger else { return nil }
        switch field {
        case "county": return ("a county's node fills in its own county", false)
        case "date": return ("default: today", true)
        case "work_area": return kind.workArea.map { ("default: \($0)", true) }
        default: return nil
        }
    }

    /// What a field takes, in words.
    public func describe(_ f: Programme.Field) -> String {
        switch f.type {
        case .text: f.values.map { "one of " + $0.joined(separator: "|") } ?? "text"
        case .int:
            "a whole number" + (f.min.map { " ≥ \($0)" } ?? "") + (f.max.map { " ≤ \($0)" } ?? "")
        case .real: "a number"
        case .money: "an amount in 万元 or 元, e.g. 12.5万 or 50000元"
        case .date: "a date YYYY-MM-DD"
        case .year: "a year \(plan.yearRange.lowerBound)–\(plan.yearRange.upperBound)"
        case .county: "a county: " + plan.counties.map(\.id).joined(separator: "|")
        case .workArea: "a work area: " + plan.workAreas.map(\.id).joined(separator: "|")
        case .project: "a project id"
        case .stage: "a stage: " + plan.allStages.joined(separator: "|")
        }
    }

    /// What a field takes, in Chinese.
    public func describeZh(_ f: Programme.Field) -> String {
        switch f.type {
        case .text: f.values.map { "可选：" + $0.map { plan.label(f.name, $0) }.joined(separator: "、") } ?? "文字"
        case .int:
            "整数" + (f.min.map { "，不小于\($0)" } ?? "") + (f.max.map { "，不大于\($0)" } ?? "")
        case .real: "数字"
        case .money: "金额，万元或元，如 12.5万 或 50000元"
        case .date: "日期，年-月-日"
        case .year: "年度，\(plan.yearRange.lowerBound)–\(plan.yearRange.upperBound)"
        case .county: "县：" + plan.counties.map(\.name).joined(separator: "、")
        case .workArea: "工作领域：" + plan.workAreas.map(\.name).joined(separator: "、")
        case .project: "项目编号"
        case .stage: "阶段：" + plan.allStages.map { plan.label("stage", $0) }.joined(separator: "、")
        }
    }

    /// A value typed in by a person for a field of a record kind (the value a conflict is resolved
    /// with, say): the plan's type, or nil when the plan does not know the field.
    public func value(collection: String, field: String, text: String, context: Context) -> Result<Value, Reason>? {
        guard let kind = plan.kinds.first(where: { $0.collection == collection }),
            let f = plan.fields(of: kind).first(where: { $0.storedName == field || $0.name == field })
        else { return nil }
        return typed(f, text, context)
    }

    private func typed(_ f: Programme.Field, _ text: String, _ context: Context) -> Result<Value, Reason> {
        // Numbers and dates as a Chinese keyboard types them (４０, ２０１７－０６－３０) are the same numbers.
        let text = [.int, .real, .money, .date, .year].contains(f.type) ? Self.halfWidth(text) : text
        switch f.type {
        case .text:
            if let values = f.values, !values.contains(text) {
                let nearest = Self.nearest(text, in: values)
                let hint = nearest.map { "did you mean \($0)? " } ?? ""
                return .failure(
                    Reason(
                        "'\(text)' is not allowed; \(hint)one of \(values.joined(separator: ", "))",
                        zh:
                            "不能填“\(text)”；\(nearest.map { "是不是\(plan.label(f.name, $0))？" } ?? "")可选：\(values.map { plan.label(f.name, $0) }.joined(separator: "、"))"
                    ))
            }
            return .success(.text(text))
        case .int:
            guard let n = Int64(text) else { return .failure(Reason("'\(text)' is not a whole number", zh: "“\(text)”不是整数，请用阿拉伯数字")) }
            if let min = f.min, n < min { return .failure(Reason("\(n) is below \(min)", zh: "\(n)小于\(min)")) }
            if let max = f.max, n > max { return .failure(Reason("\(n) is above \(max)", zh: "\(n)大于\(max)")) }
            return .success(.int(n))
        case .real:
            guard let d = Double(text), d.isFinite else { return .failure(Reason("'\(text)' is not a number", zh: "“\(text)”不是数字")) }
            return .success(.real(d))
        case .money:
            return Money.parse(text).map { .int($0) }.mapError { Reason($0.text) }
        case .date:
            return Self.isDate(text)
                ? .success(.text(text))
                : .failure(Reason("'\(text)' is not a date; write YYYY-MM-DD, e.g. 2017-06-30", zh: "“\(text)”不是日期；请写 年-月-日，如 2017-06-30"))
        case .year:
            guard let y = Int(text), plan.yearRange.contains(y) else {
                let (first, last) = (plan.yearRange.lowerBound, plan.yearRange.upperBound)
                return .failure(Reason("'\(text)' is not a year of the programme (\(first)–\(last))", zh: "“\(text)”不是规划年度（\(first)–\(last)年）"))
            }
            // Text, not a number: a reversal carries the opposite of an entry's numbers, and a year has none.
            return .success(.text(String(y)))
        case .county:
            // A county as people name it (临潭县, 临潭) is the county.
            if let c = plan.counties.first(where: { $0.name == text || (text.count >= 2 && $0.name.hasPrefix(text)) }) {
                return .success(.text(c.id))
            }
            return Self.oneOf(text, plan.counties.map(\.id), "county", "counties", zh: ("县", plan.counties.map(\.name)))
        case .workArea:
            if let w = plan.workAreas.first(where: { $0.name == text }) { return .success(.text(w.id)) }
            return Self.oneOf(text, plan.workAreas.map(\.id), "work area", "work areas", zh: ("工作领域", plan.workAreas.map(\.name)))
        case .project:
            guard context.projectExists(text) else {
                return .failure(
                    Reason(
                        "no project '\(text)' here (a project made elsewhere arrives with a sync)",
                        zh: "本节点没有项目“\(text)”（别处建立的项目同步后才有）", nextStep: .listProjects))
            }
            return .success(.text(text))
        case .stage: return Self.oneOf(text, plan.allStages, "stage", "stages", zh: ("阶段", plan.allStages.map { plan.label("stage", $0) }))
        }
    }

    /// `text` with full-width forms (U+FF01–U+FF5E: ４０, ．, －) as their ASCII letters and the
    /// ideographic space as a space, trimmed.
    public static func halfWidth(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for u in text.unicodeScalars {
            switch u.value {
            case 0xFF01...0xFF5E: scalars.append(Unicode.Scalar(u.value - 0xFEE0)!)
            case 0x3000: scalars.append(" ")
            default: scalars.append(u)
            }
        }
        return String(scalars).trimmingCharacters(in: .whitespaces)
    }

    /// A real calendar date written `YYYY-MM-DD`.
    /// `text` if it is one of `ids`, else why not, with the nearest id and all of them.
    /// `zh`: what the ids are in Chinese, and the words people read for them.
    static func oneOf(_ text: String, _ ids: [String], _ what: String, _ whats: String, zh: (what: String, words: [String])) -> Result<Value, Reason>
    {
        guard ids.contains(text) else {
            let nearest = nearest(text, in: ids)
            let hint = nearest.map { "did you mean \($0)? " } ?? ""
            let word = nearest.flatMap { ids.firstIndex(of: $0) }.map { zh.words[$0] }
            return .failure(
                Reason(
                    "no \(what) '\(text)' in the plan; \(hint)\(whats): \(ids.joined(separator: ", "))",
                    zh: "规划中没有\(zh.what)“\(text)”；\(word.map { "是不是\($0)？" } ?? "")可选：\(zh.words.joined(separator: "、"))"))
        }
        return .success(.text(text))
    }

    public static func isDate(_ text: String) -> Bool { CivilDate(text) != nil }

    /// The closest of `candidates` to `word` (edit distance at most 2, or a third of its length).
    public static func nearest(_ word: String, in candidates: [String]) -> String? {
        let limit = max(2, word.count / 3)
        var best: (String, Int)?
        for c in candidates {
            let d = distance(Array(word), Array(c))
            if d <= limit && d < (best?.1 ?? Int.max) { best = (c, d) }
        }
        return best?.0
    }

    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// Why one value was not accepted.
public struct Reason: Error, Sendable {
    public var text: String
    /// The same in Chinese, as a web page shows it.
    public var zh: String
    public var nextStep: NextStep?
    public init(_ text: String, zh: String? = nil, nextStep: NextStep? = nil) {
        self.text = text
        self.zh = zh ?? text
        self.nextStep = nextStep
    }
}

extension ProgrammeCheck {
    /// What in stored data of `kind` does not fit this plan (it was applied anyway: a merge never
    /// depends on validation). Listed in HQ's review queue.
    public func storedProblems(kind: Programme.Kind, fields stored: [String: Value]) -> [String] {
        let fields = plan.fields(of: kind)
        var out: [String] = []
        for name in stored.keys.sorted() where !name.hasPrefix("_") && !fields.contains(where: { $0.storedName == name }) {
            out.append("规划中\(kind.name)没有“\(name)”这一项")
        }
        for f in fields {
            guard let v = stored[f.storedName] else {
                if f.isRequired { out.append("缺少\(f.label ?? f.name)") }
                continue
            }
            switch (f.type, v) {
            case (.text, .text(let t)):
                if let values = f.values, !values.contains(t) {
                    out.append("\(f.label ?? f.name)“\(t)”不在可选值中（\(values.map { plan.label(f.name, $0) }.joined(separator: "、"))）")
                }
            case (.county, .text(let t)):
                if plan.county(t) == nil { out.append("县“\(t)”不在规划中") }
            case (.workArea, .text(let t)):
                if plan.workArea(t) == nil { out.append("工作领域“\(t)”不在规划中") }
            case (.date, .text(let t)):
                if !Self.isDate(t) { out.append("\(f.label ?? f.name)“\(t)”不是日期") }
            case (.year, .text(let t)):
                if Int(t).map({ !plan.yearRange.contains($0) }) ?? true { out.append("年度“\(t)”不是规划年度") }
            case (.year, .int(let y)):
                // Reports read a year written as a number too.
                if !plan.yearRange.contains(Int(y)) { out.append("年度\(y)不是规划年度") }
            case (.int, .int(let n)), (.money, .int(let n)):
                if let min = f.min, n < min { out.append("\(f.label ?? f.name)\(n)小于\(min)") }
                if let max = f.max, n > max { out.append("\(f.label ?? f.name)\(n)大于\(max)") }
            case (.stage, .text(let t)):
                if !plan.allStages.contains(t) { out.append("阶段“\(t)”不是规划中的阶段") }
            case (.real, .real), (.real, .int), (.project, .text):
                break
            default:
                out.append("\(f.label ?? f.name)为\(v)，应为\(describeZh(f))")
            }
        }
        return out + plausibility(kind: kind, fields: stored).map(\.message)
    }
}
