import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SyncNode
import SyncProtocol

/// The pages' models: what each template shows, computed from the same reports and library
/// calls as the CLI.
extension WebInterface {
    /// Rows a list on the dashboard shows before "N more".
    static let listLimit = 50

    // MARK: dashboard

    func dashboard(_ session: WebSession?, _ lang: Language) throws -> (String, [String: Any]) {
        let today = LocalTime.today()
        let funds = try store.report("funds", today: today)
        let projects = try store.report("projects", today: today)
        let activities = try store.report("activities", today: today)
        let tasks = try store.report("tasks", today: today)
        let review = try store.report("review", today: today)
        let sync = try store.report("sync", today: today)
        let now = store.nowMillis()
        var model: [String: Any] = [
            "title": lang.labels["dashboard"] ?? "", "asOf": ReportFormat.localTime(now), "csvReports": Store.reportNames,
            "funds": table(funds, lang), "activities": table(activities, lang), "review": table(review, lang, limit: Self.listLimit),
        ]
        model["chart"] = fundsChart(funds)
        model["progress"] = cumulativeProgress(funds)

        // Projects: a count per county and stage, and the late ones.
        let plan = try store.programme()
        let county = projects.column("county")
        let stage = projects.column("stageId")
        let late = projects.column("late")
        var counts: [String: [String: Int]] = [:]
        var lateCount: [String: Int] = [:]
        for row in projects.rows.map(ReportRow.init) {
            let c = row.text(county)
            counts[c, default: [:]][row.text(stage), default: 0] += 1
            if row.text(late) == Lateness.overdue { lateCount[c, default: 0] += 1 }
        }
        let stages = plan.allStages
        let countyOrder = plan.counties.map(\.name) + counts.keys.filter { name in !plan.counties.contains { $0.name == name } }.sorted()
        model["stages"] = stages.map { plan.label("stage", $0) }
        model["stageRows"] = countyOrder.filter { counts[$0] != nil }.map { c -> [String: Any] in
            ["county": c, "counts": stages.map { counts[c]?[$0] ?? 0 }, "late": lateCount[c] ?? 0, "hasLate": (lateCount[c] ?? 0) > 0]
        }
        model["lateProjects"] = table(projects.filtered { $0.text(late) == Lateness.overdue }, lang, limit: Self.listLimit)

        // Supervision and tasks: the overdue ones, counted per lead unit.
        let unit = tasks.column("leadUnit")
        let state = tasks.column("stateId")
        let overdue = tasks.filtered { $0.text(state) == TaskState.overdue.rawValue }
        var perUnit: [String: Int] = [:]
        for row in overdue.rows.map(ReportRow.init) { perUnit[row.text(unit), default: 0] += 1 }
        model["overdueByUnit"] = perUnit.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { ["unit": $0.key, "count": $0.value] }
        model["overdue"] = table(overdue, lang, limit: Self.listLimit)

        // Sync health: a node not heard from (or whose data has not arrived) for over a day stands out.
        let heard = sync.column("lastHeard")
        let received = sync.column("lastReceived")
        let role = sync.column("role")
        let dayAgo = now > 86_400_000 ? now - 86_400_000 : 0
        model["sync"] = table(sync, lang) { row in
            guard row.text(role) != Store.roleWords[.hq] else { return false }
            let latest = max(row.int(heard) ?? 0, row.int(received) ?? 0)
            return latest < Int64(dayAgo)
        }
        return ("dashboard", model)
    }

    /// One report on a page of its own (`/report/NAME`, `?year=` for one budget year): the
    /// assessment view and the supervision notice are read this way, and so is any report.
    func reportPage(_ lang: Language, name: String, year: Int?) throws -> (String, [String: Any]) {
        let plan = try store.programme()
        let report = try store.report(name, filter: ReportFilter(year: year), today: LocalTime.today())
        let title = ["assessment": "assessmentView", "notice": "noticeView"][name].flatMap { lang.labels[$0] } ?? report.title
        return (
            "report",
            [
                "title": title, "heading": title, "name": name, "report": table(report, lang),
                "asOf": ReportFormat.localTime(store.nowMillis()),
                // Reports counted by budget year offer each year of the plan.
                "years": ["funds", "activities", "assessment"].contains(name)
                    ? [["text": lang.labels["allYears"] ?? "", "href": "/report/\(name)", "current": year == nil]]
                        + plan.yearRange.map { ["text": String($0), "href": "/report/\(name)?year=\($0)", "current": year == $0] } : [],
            ]
        )
    }

    /// The dashboard's page as a logged-in user gets it, without HTTP: what the benchmark times
    /// (the server's share of a page view).
    public func dashboardHTML(language: Language = .zh) throws -> String {
        let (template, model) = try dashboard(nil, language)
        return html(template, model, language: language, session: nil)
    }

    /// A report as the table template shows it: every cell's display text, with its column id and,
    /// for numbers, the raw value (`data-value`) that equals `syncnode report NAME --json`.
    func table(_ report: ReportTable, _ lang: Language, limit: Int? = nil, stale: ((ReportRow) -> Bool)? = nil) -> [String: Any] {
        // Only the rows shown are made into the people's table (a review of 100,000 rows shows 50).
        let total = report.rows.count
        var limited = report
        if let limit { limited.rows = Array(report.rows.prefix(limit)) }
        // A 合计 row (the notice's lead-unit and district rows) stands out.
        let rowType = limited.column("rowType")
        let totals = limited.rows.map { row in rowType.map { ReportRow(cells: row).text($0) != "item" } ?? false }
        let report = limited.forPeople
        let shown = report.rows
        let lateColumn = report.name == "projects" ? report.column("late") : nil
        var out: [String: Any] = [
            "name": report.name, "width": report.columns.count,
            "columns": report.columns.map { ["label": lang.column($0.id, $0.label)] },
            "rows": zip(shown, totals).map { cells, isTotal -> [String: Any] in
                let row = ReportRow(cells: cells)
                return [
                    "stale": stale?(row) ?? false, "late": lateColumn.map { !row.text($0).isEmpty } ?? false, "total": isTotal,
                    "cells": zip(cells, report.columns).map { cell, column -> [String: Any] in
                        var out: [String: Any] = ["col": column.id, "text": ReportFormat.display(cell, column.type)]
                        // A project's id opens its page, with its photos.
                        if report.name == "projects", column.id == "id", case .text(let id) = cell {
                            out["href"] = Self.recordPath("/record/", "projects", id)
                        }
                        if case .int(let n) = cell {
                            out["value"] = String(n)
                            out["hasValue"] = true
                            out["num"] = column.type != .time
                        } else if case .money(let n) = cell {
                            out["value"] = String(n)
                            out["hasValue"] = true
                            out["num"] = column.type != .time
                        }
                        return out
                    },
                ]
            },
        ]
        if total > shown.count {
            out["more"] = (lang.labels["more"] ?? "").replacingOccurrences(of: "{n}", with: String(total - shown.count))
        }
        return out
    }

    /// Bars per county and year: the target, and the disbursed amount over it, to one scale
    /// (the district's 合计 rows are left to the table: their bars would shrink the counties').
    func fundsChart(_ funds: ReportTable) -> [String: Any] {
        let county = funds.column("county")
        let countyID = funds.column("countyId")
        let year = funds.column("year")
        let target = funds.column("target")
        let disbursed = funds.column("disbursed")
        let yearly = funds.rows.map(ReportRow.init).filter { Int($0.text(year)) != nil && $0.text(countyID) != "district" }
        let largest = max(1, yearly.map { max($0.int(target) ?? 0, $0.int(disbursed) ?? 0) }.max() ?? 1)
        let labelWidth = 110.0
        let barWidth = 520.0
        let rowHeight = 20.0
        var bars: [[String: Any]] = []
        for (i, row) in yearly.enumerated() {
            let y = 4 + Double(i) * rowHeight
            let t = Double(row.int(target) ?? 0)
            let d = Double(row.int(disbursed) ?? 0)
            let tw = barWidth * t / Double(largest)
            let dw = barWidth * d / Double(largest)
            bars.append([
                "county": row.text(county), "year": row.text(year), "label": "\(row.text(county)) \(row.text(year))",
                "x": Self.number(labelWidth), "y": Self.number(y), "textY": Self.number(y + 12), "targetWidth": Self.number(tw),
                "disbursedWidth": Self.number(dw), "valueX": Self.number(labelWidth + max(tw, dw) + 6),
                "targetText": Money.wan(row.int(target) ?? 0), "disbursedText": Money.wan(row.int(disbursed) ?? 0),
            ])
        }
        return ["bars": bars, "width": Int(labelWidth + barWidth + 190), "height": Int(8 + Double(max(1, yearly.count)) * rowHeight)]
    }

    /// Each county's cumulative disbursement as a share of its whole programme's target.
    func cumulativeProgress(_ funds: ReportTable) -> [[String: Any]] {
        let county = funds.column("county")
        let year = funds.column("year")
        let pct = funds.column("disbursedPct")
        // The whole programme's rows (a year span), not the rows of money outside the plan's years.
        return funds.rows.map(ReportRow.init).filter { $0.text(year).contains("–") }.map { row in
            let hundredths = row.int(pct) ?? 0
            return [
                "county": row.text(county), "pct": String(format: "%.2f", Double(hundredths) / 100),
                "width": Self.number(min(100, max(0, Double(hundredths) / 100))),
            ]
        }
    }

    static func number(_ x: Double) -> String { String(format: "%.1f", x) }

    // MARK: forms

    func entryList(_ session: WebSession, _ lang: Language) throws -> (String, [String: Any]) {
        let kinds = try store.recordableKinds()
        return (
            "entry",
            [
                "title": lang.labels["entry"] ?? "", "viewer": !session.user.role.mayWrite,
                "kinds": kinds.map { ["id": $0.id, "name": lang == .en ? ($0.nameEn ?? $0.name) : $0.name] },
            ]
        )
    }

    /// The form of one kind, generated from the plan: a field per plan field, typed inputs, lists
    /// of the plan's values, and each problem next to its field.
    func form(
        _ session: WebSession, _ lang: Language, kind kindID: String, values: [String: String], problems: [ProgrammeCheck.Problem],
        recordID: String = "", isUpdate: Bool = false, offerConfirm: Bool = false, correcting: (ledger: String, entryID: String)? = nil
    ) throws -> (String, [String: Any]) {
        let plan = try store.programme()
        guard let kind = plan.kind(kindID) else {
            throw HTTPError(.notFound, message: "no kind \(kindID.prefix(40))")
        }
        let fieldNames = Set(plan.fields(of: kind).map(\.name))
        var projectIDs: [String]? = nil
        var fields: [[String: Any]] = []
        let checker = ProgrammeCheck(plan)
        for field in plan.fields(of: kind) where field.name != "kind" {
            var model: [String: Any] = [
                "name": field.name, "label": field.label ?? field.name, "required": field.isRequired, "value": values[field.name] ?? "",
            ]
            if let problem = problems.first(where: { $0.field == field.name }) { model["error"] = lang == .zh ? problem.zh : problem.message }
            model.merge(Self.phoneCheck(field, checker, lang)) { _, rule in rule }
            // Required on the phone only where the node fills nothing in (a ledger entry's date,
            // its county at a county's node, its kind's work area).
            model["phoneRequired"] = field.isRequired && ProgrammeCheck.defaultNote(kind: kind, field: field.name) == nil
            var options: [(String, String)]?
            switch field.type {
            case .county:
                let counties = store.info.role == .county ? plan.counties.filter { $0.id == store.info.site } : plan.counties
                options = counties.map { ($0.id, lang == .en ? ($0.nameEn ?? $0.name) : $0.name) }
            case .workArea: options = plan.workAreas.map { ($0.id, lang == .en ? ($0.nameEn ?? $0.name) : $0.name) }
            case .stage: options = plan.allStages.map { ($0, plan.label("stage", $0)) }
            default: options = field.values.map { $0.map { ($0, plan.label(field.name, $0, kind: kind.id)) } }
            }
            if let options {
                let chosen = values[field.name] ?? (field.type == .county && options.count == 1 ? options[0].0 : "")
                model["isSelect"] = true
                model["options"] = options.map { ["value": $0.0, "text": $0.1, "selected": $0.0 == chosen] }
            } else {
                model.merge(Self.input(field, lang)) { _, input in input }
                if field.type == .date, field.name == "date", values[field.name] == nil { model["value"] = LocalTime.today() }
                if field.type == .project {
                    if projectIDs == nil {
                        // A county clerk picks among the county's own projects.
                        let own = store.info.role == .county ? Value.text(store.info.site) : nil
                        projectIDs = try store.currentValues("projects", fields: ["county"]).lazy
                            .filter { own == nil || $0.values["county"] == own }.prefix(2000).map(\.recordID)
                    }
                    model["list"] = projectIDs ?? []
                    model["hasList"] = true
                }
            }
            fields.append(model)
        }
        // The summary at the top lists every problem (a page read from the top, or by a screen
        // reader, learns all of them there): a field's under its label, linked to the field.
        let labels = Dictionary(plan.fields(of: kind).map { ($0.name, $0.label ?? $0.name) }) { first, _ in first }
        let summary: [[String: Any]] = problems.map { problem in
            let message = lang == .zh ? problem.zh : problem.message
            guard let field = problem.field, fieldNames.contains(field) else {
                return ["text": problem.field.map { "\($0)：\(message)" } ?? message, "isField": false]
            }
            return ["text": "\(labels[field] ?? field)：\(message)", "isField": true, "field": field]
        }
        return (
            "form",
            [
                "title": lang == .en ? (kind.nameEn ?? kind.name) : kind.name, "kind": kind.id,
                "kindName": lang == .en ? (kind.nameEn ?? kind.name) : kind.name, "fields": fields, "isRecord": kind.collection != nil,
                "recordID": recordID, "isUpdate": isUpdate, "offerConfirm": offerConfirm,
                "action": correcting.map { "/correct/\(Self.encode($0.ledger))/\(Self.encode($0.entryID))" } ?? "/entry/\(kind.id)",
                "correcting": correcting.map { ["entryID": $0.entryID] } as Any, "keptOffline": correcting == nil,
                "viewer": !session.user.role.mayWrite,
                "hasErrors": !problems.isEmpty, "errorSummary": summary,
                // The same form sent twice is recorded once (`Store.submissionKey`).
                "submissionKey": Self.randomToken(),
            ]
        )
    }

    /// How a field that is not a list is typed in.
    static func input(_ field: Programme.Field, _ lang: Language) -> [String: Any] {
        switch field.type {
        case .date: ["inputType": "date"]
        // Text with a numeric keypad: what was typed reaches the node's own check, whose message
        // is shown next to the field (a number input would drop it silently).
        case .int, .year: ["inputType": "text", "inputMode": "numeric"]
        case .money: ["inputType": "text", "hint": lang.labels["money.hint"] ?? ""]
        default: ["inputType": "text"]
        }
    }

    /// The plan's rule for a field, for the phone's own check of a form kept offline (offline.js):
    /// its type, its bounds (a whole number's, or the plan's years), and what it takes in the plan's
    /// words.
    static func phoneCheck(_ field: Programme.Field, _ checker: ProgrammeCheck, _ lang: Language) -> [String: Any] {
        var out: [String: Any] = ["check": field.type.rawValue, "describe": lang == .zh ? checker.describeZh(field) : checker.describe(field)]
        let years = checker.plan.yearRange
        let bounds: (Int?, Int?) =
            switch field.type {
            case .int: (field.min.map(Int.init), field.max.map(Int.init))
            case .year: (years.lowerBound, years.upperBound)
            default: (nil, nil)
            }
        if let min = bounds.0 { out["min"] = String(min) }
        if let max = bounds.1 { out["max"] = String(max) }
        return out
    }

    /// The key a form's write is recorded under: the form's own, per user (nil without one).
    static func submissionKey(_ write: Write) -> String? {
        guard let key = write.value("_key"), (16...128).contains(key.utf8.count),
            key.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_") })
        else { return nil }
        return write.session.user.name + ":" + key
    }

    /// Records a form through `Store.recordProgrammeItem`, the CLI's `add`/`update` call: the
    /// same validation, messages and policy. A refused form comes back with the problems next to
    /// their fields and nothing written.
    func record(_ request: Request, _ context: WebRequestContext, kind: String) async throws -> Response {
        let write = try context.write
        let store = store
        let plan = try await BlockingWork.run { try store.programme() }
        guard let planned = plan.kind(kind) else { return notFound(request) }
        let input = write.form.fields.filter { !$0.0.hasPrefix("_") && $0.0 != "csrf" && !$0.1.trimmingCharacters(in: .whitespaces).isEmpty }
            .map { ($0.0, $0.1.trimmingCharacters(in: .whitespaces)) }
        let recordID = write.value("_id")?.trimmingCharacters(in: .whitespaces) ?? ""
        let isUpdate = write.value("_update") == "1"
        let confirm = write.value("_confirm") == "1"
        let isRecord = planned.collection != nil
        let seq: UInt64
        do {
            let user = write.session.user.name
            let key = Self.submissionKey(write)
            seq = try await BlockingWork.run {
                try Store.$author.withValue(user) {
                    try Store.$submissionKey.withValue(key) {
                        try store.recordProgrammeItem(
                            kind: kind, recordID: isRecord ? recordID : nil, input: input, today: LocalTime.today(),
                            mustExist: isRecord ? isUpdate : nil,
                            confirm: confirm
                        ).seq
                    }
                }
            }
        } catch let error as SyncNodeError where error.code == .alreadyRecorded {
            return Self.redirect(to: "/mine?recorded=\(error.recordedSeq ?? 0)")
        } catch let error as SyncNodeError {
            let problems = error.problems.isEmpty ? [ProgrammeCheck.Problem(field: nil, message: error.message)] : error.problems
            let values = Dictionary(input, uniquingKeysWith: { _, b in b })
            let status: HTTPResponse.Status = error.code == .forbidden ? .forbidden : error.code == .notFound ? .notFound : .unprocessableContent
            return try await answer(write, status: status) { session, lang in
                try form(
                    session, lang, kind: kind, values: values, problems: problems, recordID: recordID, isUpdate: isUpdate,
                    offerConfirm: error.needsConfirmation)
            }
        }
        logger.info("web record", metadata: ["web.user": "\(write.session.user.name)", "web.kind": "\(kind)", "sync.seq": .stringConvertible(seq)])
        return Self.redirect(to: "/mine?recorded=\(seq)")
    }

    // MARK: own work

    func mine(_ session: WebSession, _ lang: Language, _ request: Request) throws -> (String, [String: Any]) {
        let labels = lang.labels
        let work = try store.ownWork(limit: 200)
        let plan = try store.programme()
        let withdrawn = try store.withdrawnEntries(
            ledgers: Set(work.flatMap { $0.changes.compactMap { if case .append(let e) = $0 { e.ledger } else { nil } } }))
        let mayCorrect = session.user.role.mayWrite
        var model: [String: Any] = [
            "title": labels["mine"] ?? "",
            "work": work.map { w -> [String: Any] in
                var row: [String: Any] = [
                    "seq": w.seq, "time": ReportFormat.localTime(w.time), "stateID": w.state.rawValue,
                    "state": labels["state.\(w.state.rawValue)"] ?? w.state.rawValue, "reason": w.reason ?? "",

                    "changes": w.changes.prefix(20).map { change -> [String: Any] in
                        var out: [String: Any] = ["text": Self.describe(change, plan, lang)]
                        if case .append(let e) = change, plan.kinds.contains(where: { $0.ledger == e.ledger }), !MoneyModel.isReversal(e.fields),
                            w.state != .refused, mayCorrect
                        {
                            if withdrawn.contains([e.ledger, e.entryID]) {
                                out["withdrawn"] = true
                            } else {
                                out["correct"] = "/correct/\(Self.encode(e.ledger))/\(Self.encode(e.entryID))"
                            }
                        }
                        return out
                    } + (w.changes.count > 20 ? [["text": "… +\(w.changes.count - 20)"]] : []),
                ]
                if let r = w.review {
                    row["review"] = [
                        "state": r.state.rawValue, "word": r.state.word, "note": r.note ?? "", "hasNote": r.note != nil,
                        "by": [r.reviewer, r.date].compactMap { $0 }.joined(separator: " "),
                    ]
                }
                return row
            },
        ]
        if let seq = request.uri.queryParameters.get("recorded"), let n = UInt64(seq) {
            model["recorded"] = (labels["recorded"] ?? "").replacingOccurrences(of: "{n}", with: String(n))
        }
        return ("mine", model)
    }

    /// A change in the plan's words: the kind's name, then each field's label and value, amounts
    /// in 万元 (a reversal says what it withdraws).
    static func describe(_ change: Change, _ plan: Programme, _ lang: Language) -> String {
        switch change {
        case .set(let w): return "\(w.collection)/\(w.recordID) \(w.field) = \(w.value)"
        case .append(let e):
            let kinds = plan.kinds(inLedger: e.ledger)
            let kind = kinds.first { $0.id == e.fields["kind"]?.description } ?? (kinds.count == 1 ? kinds[0] : nil)
            guard let kind else {
                return "\(e.ledger) "
                    + e.fields.filter { $0.key != "kind" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            }
            let name = lang == .en ? (kind.nameEn ?? kind.name) : kind.name
            if MoneyModel.isReversal(e.fields) {
                return (lang.labels["withdrawal"] ?? "") + " \(name) \(e.reverses ?? "")"
            }
            let parts = plan.fields(of: kind).compactMap { f -> String? in
                guard f.name != "kind", let value = e.fields[f.storedName] else { return nil }
                let label = lang == .en ? f.name : (f.label ?? f.name)
                return "\(label) \(formText(f, value, plan))\(f.type == .money ? (lang == .en ? "0k yuan" : "万元") : "")"
            }
            return "\(name)：" + parts.joined(separator: "，")
        case .author(let name): return (lang.labels["author"] ?? "") + name
        case .unknown(let kind, _): return "(\(kind))"
        }
    }

    /// A stored value as a form shows it (and as a person would type it): an amount in 万 (its
    /// unit is added where it is typed), a county or work area by its name in lists.
    static func formText(_ f: Programme.Field, _ value: Value, _ plan: Programme) -> String {
        switch (f.type, value) {
        case (.money, .int(let fen)): return Money.wan(fen)
        case (.county, .text(let id)): return plan.county(id)?.name ?? id
        case (.workArea, .text(let id)): return plan.workArea(id)?.name ?? id
        default: return value.description
        }
    }

    // MARK: corrections

    /// The form of an entry to correct, filled in with what it holds, and a button to withdraw it.
    func correctionForm(_ session: WebSession, _ lang: Language, ledger: String, entryID: String) throws -> (String, [String: Any]) {
        let found = try store.findEntry(entryID, ledger: ledger)
        guard let kind = found.kind else { throw SyncNodeError(.notFound, "no entry \(entryID) of the plan's kinds") }
        var (template, model) = try form(
            session, lang, kind: kind.id, values: Self.formValues(found, try store.programme()), problems: [], correcting: (ledger, entryID))
        model["title"] = (lang.labels["correctTitle"] ?? "") + " " + (model["kindName"] as? String ?? "")
        model["kindName"] = model["title"]
        return (template, model)
    }

    /// The text each field of an entry is typed as in its form.
    static func formValues(_ found: FoundEntry, _ plan: Programme) -> [String: String] {
        guard let kind = found.kind else { return [:] }
        var out: [String: String] = [:]
        for f in plan.fields(of: kind) where f.name != "kind" {
            guard let value = found.row.fields[f.storedName] else { continue }
            switch (f.type, value) {
            case (.money, .int(let fen)): out[f.name] = Money.wan(fen) + "万"
            default: out[f.name] = value.description
            }
        }
        return out
    }

    /// Records a correction (or, with `_undo`, a withdrawal) through `Store.correctEntry`, the
    /// CLI's `correct`: the fields whose text differs from what the entry holds are the changes.
    func correct(_ request: Request, _ context: WebRequestContext, ledger: String, entryID: String) async throws -> Response {
        let write = try context.write
        let store = store
        let undo = write.value("_undo") == "1"
        let confirm = write.value("_confirm") == "1"
        let input = write.form.fields.filter { !$0.0.hasPrefix("_") && $0.0 != "csrf" }.map { ($0.0, $0.1.trimmingCharacters(in: .whitespaces)) }
        do {
            let done = try await BlockingWork.run {
                let found = try store.findEntry(entryID, ledger: ledger)
                let before = Self.formValues(found, try store.programme())
                let changes = undo ? [] : input.filter { !$0.1.isEmpty && before[$0.0] != $0.1 }
                if !undo && changes.isEmpty { throw SyncNodeError.invalid(write.visitor.language.labels["noChange"] ?? "") }
                return try Store.$author.withValue(write.session.user.name) {
                    try Store.$submissionKey.withValue(Self.submissionKey(write)) {
                        try store.correctEntry(entryID, ledger: ledger, changes: changes, today: LocalTime.today(), confirm: confirm)
                    }
                }
            }
            logger.info(
                "web correction",
                metadata: [
                    "web.user": "\(write.session.user.name)", "ledger": "\(ledger)", "entry": "\(entryID)", "sync.seq": .stringConvertible(done.seq),
                ])
            return Self.redirect(to: "/mine?recorded=\(done.seq)")
        } catch let error as SyncNodeError where error.code == .alreadyRecorded {
            return Self.redirect(to: "/mine?recorded=\(error.recordedSeq ?? 0)")
        } catch let error as SyncNodeError {
            if error.code == .notFound { return notFound(request) }
            let problems = error.problems.isEmpty ? [ProgrammeCheck.Problem(field: nil, message: error.message)] : error.problems
            let values = Dictionary(input, uniquingKeysWith: { _, b in b })
            return try await answer(write, status: .unprocessableContent) { session, lang in
                // An entry withdrawn meanwhile (or twice): said on a page of its own.
                guard let found = try? store.findEntry(entryID, ledger: ledger) else {
                    return (
                        "message",
                        [
                            "title": lang.labels["correctTitle"] ?? "", "heading": lang.labels["correctTitle"] ?? "", "message": error.message,
                            "link": "/mine", "linkText": lang.labels["back"] ?? "",
                        ]
                    )
                }
                var (template, model) = try form(
                    session, lang, kind: found.kind?.id ?? "", values: values.isEmpty ? Self.formValues(found, try store.programme()) : values,
                    problems: problems, offerConfirm: error.needsConfirmation, correcting: (ledger, entryID))
                model["kindName"] = (lang.labels["correctTitle"] ?? "") + " " + (model["kindName"] as? String ?? "")
                return (template, model)
            }
        }
    }

    // MARK: conflicts

    /// Each field in conflict with every version in it: the value in the plan's words, the node
    /// and person who wrote it and when, and a button that keeps it as it is.
    func conflictsPage(_ session: WebSession, _ lang: Language, error: String?, done: String?) throws -> (String, [String: Any]) {
        let plan = try store.programme()
        let conflicts = Array(try store.conflicts().prefix(500))
        let labels = Dictionary(try store.registry().map { ($0.node, $0.label.isEmpty ? $0.site : $0.label) }, uniquingKeysWith: { a, _ in a })
        let authors = try store.authors(of: conflicts.flatMap { [$0.winnerTs, $0.otherTs] })
        struct Key: Hashable { var collection, recordID, field: String }
        var order: [Key] = []
        var versions: [Key: [(ts: Timestamp, value: Value, current: Bool)]] = [:]
        for c in conflicts {
            let key = Key(collection: c.collection, recordID: c.recordID, field: c.field)
            if versions[key] == nil {
                order.append(key)
                versions[key] = [(c.winnerTs, c.winnerValue, true)]
            }
            if !versions[key]!.contains(where: { $0.ts == c.otherTs }) { versions[key]!.append((c.otherTs, c.otherValue, false)) }
        }
        let items = order.map { key -> [String: Any] in
            let kind = plan.kinds.first { $0.collection == key.collection }
            let field = kind.flatMap { k in plan.fields(of: k).first { $0.storedName == key.field || $0.name == key.field } }
            return [
                "collection": key.collection, "recordID": key.recordID, "field": key.field,
                "kindName": kind?.name ?? key.collection, "fieldLabel": field?.label ?? key.field, "mayResolve": session.user.role.mayResolve,
                "versions": versions[key]!.map { v -> [String: Any] in
                    [
                        "text": field.map { Self.formText($0, v.value, plan) + ($0.type == .money ? " 万元" : "") } ?? v.value.description,
                        "current": v.current,
                        "node": labels[v.ts.node] ?? v.ts.node.short, "author": authors[v.ts] ?? "", "hasAuthor": authors[v.ts] != nil,
                        "time": ReportFormat.localTime(v.ts.millis), "keep": v.ts.hex,
                    ]
                },
            ]
        }
        var model: [String: Any] = ["title": lang.labels["conflicts"] ?? "", "items": items]
        if let error { model["error"] = error }
        if let done { model["done"] = done }
        return ("conflicts", model)
    }

    /// Resolves a conflict through `Store.resolveConflict`, as `syncnode conflicts resolve` does.
    func resolve(_ context: WebRequestContext) async throws -> Response {
        let write = try context.write
        let store = store
        let (collection, record, field) = (write.value("collection") ?? "", write.value("record") ?? "", write.value("field") ?? "")
        let value = write.value("value").flatMap { $0.isEmpty ? nil : $0 }
        // "Keep this value": the version's clock; otherwise a value typed in (or none: keep the current one).
        let keep = write.value("keep").flatMap { Timestamp(hex: $0) }
        do {
            let t = try await BlockingWork.run {
                try Store.$author.withValue(write.session.user.name) {
                    if let keep { return try store.resolveConflict(collection: collection, recordID: record, field: field, keeping: keep) }
                    return try store.resolveConflict(collection: collection, recordID: record, field: field, text: value, today: LocalTime.today())
                }
            }
            return try await answer(write) { session, lang in
                try conflictsPage(session, lang, error: nil, done: "\(collection)/\(record).\(field) → #\(t.seq)")
            }
        } catch let error as SyncNodeError {
            // A typed value's problem in the plan's words; a version kept from a stale page, said so.
            let labels = write.visitor.language.labels
            let text =
                keep != nil && error.code == .notFound
                ? labels["conflictGone"] ?? "" : write.visitor.language == .zh ? error.problems.first?.zh ?? error.message : error.message
            return try await answer(write, status: .unprocessableContent) { session, lang in
                try conflictsPage(session, lang, error: text, done: nil)
            }
        }
    }

    /// The page that answers an admitted write.
    func answer(
        _ write: Write, status: HTTPResponse.Status = .ok, _ build: @escaping @Sendable (WebSession, Language) throws -> (String, [String: Any])
    ) async throws -> Response {
        let visitor = write.visitor
        let session = write.session
        return try await BlockingWork.run {
            let (template, model) = try build(session, visitor.language)
            return render(template, model, visitor: visitor, session: session, status: status)
        }
    }

    // MARK: downloads

    /// `reports.xlsx` (every report, a sheet each) or `NAME.csv`, for a logged-in user.
    func export(_ request: Request, _ context: WebRequestContext, file: String) async throws -> Response {
        let store = store
        return try await BlockingWork.run {
            let today = LocalTime.today()
            if file == "reports.xlsx" {
                let tables = try Store.reportNames.map { try store.report($0, today: today) }
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("syncnode-\(Self.randomToken()).xlsx").path
                defer { try? FileManager.default.removeItem(atPath: path) }
                try Workbook.write(tables, to: path)
                let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                return Self.download(
                    bytes, type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", name: "\(store.info.site)-reports.xlsx")
            }
            if file.hasSuffix(".csv"), Store.reportNames.contains(String(file.dropLast(4))) {
                let table = try store.report(String(file.dropLast(4)), today: today)
                return Self.download(ReportFormat.csv(table), type: "text/csv; charset=utf-8", name: "\(store.info.site)-\(file)")
            }
            return notFound(request)
        }
    }

    static func download(_ bytes: Data, type: String, name: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: type, .contentDisposition: "attachment; filename=\"\(name)\"", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// One row of a report, read by column.
struct ReportRow {
    var cells: [ReportTable.Cell]

    func text(_ column: Int?) -> String {
        guard let column, column < cells.count else { return "" }
        switch cells[column] {
        case .text(let t): return t
        case .int(let n), .money(let n): return String(n)
        case .none: return ""
        }
    }

    func int(_ column: Int?) -> Int64? {
        guard let column, column < cells.count, case .int(let n) = cells[column] else { return nil }
        return n
    }
}

extension ReportTable {
    func column(_ id: String) -> Int? { columns.firstIndex { $0.id == id } }

    func filtered(_ keep: (ReportRow) -> Bool) -> ReportTable {
        var copy = self
        copy.rows = rows.filter { keep(ReportRow(cells: $0)) }
        return copy
    }
}

// MARK: HQ's review of submissions

extension WebInterface {
    /// HQ's review page: the latest submissions of every other node (30 each), newest first, in
    /// the plan's words, each with its review and the two buttons.
    func submissionsPage(_ session: WebSession, _ lang: Language, error: String?, done: String?) throws -> (String, [String: Any]) {
        let plan = try store.programme()
        let isHQ = store.info.role == .hq
        let submissions = isHQ ? Array(try store.recentSubmissions(perNode: 30).prefix(300)) : []
        let reviews = try store.submissionReviews()
        let labels = try store.nodeLabels()
        let authors = try store.authors(of: submissions.map(\.hlc))
        var model: [String: Any] = [
            "title": lang.labels["submissions"] ?? "", "notHQ": !isHQ,
            "items": submissions.map { t -> [String: Any] in
                let review = reviews[t.hlc]
                var item: [String: Any] = [
                    "id": "\(t.origin.hex)/\(t.seq)", "origin": t.origin.hex, "seq": t.seq, "node": labels[t.origin] ?? t.origin.short,
                    "time": ReportFormat.localTime(t.hlc.millis), "stateID": review?.state.rawValue ?? "none",
                    "state": review?.state.word ?? lang.labels["reviewState.none"] ?? "", "returned": review?.state == .returned,
                    "mayReview": session.user.role.mayWrite,
                    "changes": t.changes.prefix(12).map { ["text": Self.describe($0, plan, lang)] },
                ]
                if let note = review?.note { item["note"] = note }
                if let author = authors[t.hlc] { item["author"] = author }
                return item
            },
        ]
        if let error { model["error"] = error }
        if let done { model["done"] = done }
        return ("submissions", model)
    }

    /// Records HQ's review of one submission through `Store.reviewSubmission`, as `syncnode
    /// submission approve|return` does.
    func reviewSubmission(_ context: WebRequestContext) async throws -> Response {
        let write = try context.write
        let store = store
        let labels = write.visitor.language.labels
        guard let origin = write.value("origin").flatMap({ NodeID(hex: $0) }), let seq = write.value("seq").flatMap({ UInt64($0) }),
            let decision = write.value("decision").flatMap({ SubmissionReview.State(rawValue: $0) })
        else { return refusal(write.visitor, .badRequest, "badForm", link: "/submissions") }
        let note = write.value("note")
        if decision == .returned, (note ?? "").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            return try await answer(write, status: .unprocessableContent) { session, lang in
                try submissionsPage(session, lang, error: labels["returnNeedsNote"], done: nil)
            }
        }
        do {
            let t = try await BlockingWork.run {
                try Store.$author.withValue(write.session.user.name) {
                    try store.reviewSubmission(origin: origin, seq: seq, state: decision, note: note, today: LocalTime.today())
                }
            }
            logger.info(
                "web review", metadata: ["web.user": "\(write.session.user.name)", "submission": "\(origin.short)/\(seq)", "state": "\(decision)"])
            let done = (labels["reviewDone"] ?? "").replacingOccurrences(of: "{n}", with: String(t.seq))
            return try await answer(write) { session, lang in try submissionsPage(session, lang, error: nil, done: done) }
        } catch let error as SyncNodeError {
            let status: HTTPResponse.Status = error.code == .forbidden ? .forbidden : error.code == .notFound ? .notFound : .unprocessableContent
            // In the page's words: who may review, or that the submission is not held here.
            let text =
                error.code == .forbidden
                ? labels["onlyHQReviews"] ?? "" : error.code == .notFound ? labels["submissionNotHere"] ?? "" : labels["badForm"] ?? ""
            return try await answer(write, status: status) { session, lang in try submissionsPage(session, lang, error: text, done: nil) }
        }
    }
}
