import ArgumentParser
import Foundation
import SyncNode
import SyncProtocol
import SyncWeb

/// Today in the local time zone (`TZ`), as entries record when something happened.
func localToday() -> String { LocalTime.today() }

/// `FIELD=VALUE` (typed by the plan: no `:=` needed) into pairs; the first `=` splits.
func programmeInput(_ assignments: [String]) throws -> [(String, String)] {
    try assignments.map { a in
        guard let (field, value) = try? AssignmentParser.split(a), !field.isEmpty else {
            throw ValidationError("'\(a)' is not FIELD=VALUE")
        }
        return (field, value)
    }
}

/// The kinds of the embedded plan, for help texts.
let planKindsHelp: String = {
    let check = ProgrammeCheck(Programme.embedded)
    return Programme.embedded.kinds.map { k in
        let fields = Programme.embedded.fields(of: k).map { f in
            // A required field the entry fills in by itself is not marked required.
            let note = ProgrammeCheck.defaultNote(kind: k, field: f.name)
            let mark =
                switch (f.isRequired, note) {
                case (true, let note?) where !note.always: " (required; \(note.text))"
                case (_, let note?): " (\(note.text))"
                case (true, nil): " (required)"
                case (false, nil): ""
                }
            return "    \(f.name)\(mark)  \(f.label ?? "") — \(check.describe(f))"
        }
        return "\(k.id)  \(k.name) / \(k.nameEn ?? k.id)\(k.collection != nil ? "  (a record: give its id first)" : "")\n"
            + fields.joined(separator: "\n") + (k.example.map { "\n    e.g. syncnode add \(k.id) \($0)" } ?? "")
    }.joined(separator: "\n\n")
}()

extension SyncNodeCommand {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record programme work in the plan's words: a project, a training, a disbursement, a supervision item...",
            discussion: """
                Values are checked against the plan before anything is written; amounts are typed in 万元 or 元 (12.5万,
                50000元) and kept as whole fen; an entry's date is the day it happened (default: today, local time).
                The kinds of the node's plan (`syncnode plan show` lists the current one):

                """ + planKindsHelp)

        @OptionGroup var node: NodeOptions
        @Argument(help: "The kind, such as project, training, labour_transfer, disbursement, supervision.") var kind: String
        @Argument(help: "For a record kind (project, task, supervision): its id; then FIELD=VALUE pairs.") var items: [String] = []
        @Flag(help: "Let a project's stage move backwards (give reason=WHY).") var force = false
        @Flag(
            help:
                "Record an entry the checks find unlikely (an amount above the county's aid, beyond an allocation or target, a date outside the plan's years, ...)."
        )
        var confirm = false

        func run() throws {
            try SyncNodeCommand.recordItem(node: node, kind: kind, items: items, force: force, mustExist: false, confirm: confirm)
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change fields of a project, task or supervision item (checked against the plan).",
            discussion:
                "e.g. syncnode update project lt-school planned_end=2018-10-31. Progress and stage are events: syncnode add project_event project=lt-school progress_pct=60"
        )
        @OptionGroup var node: NodeOptions
        @Argument(help: "project, task or supervision.") var kind: String
        @Argument(help: "Its id, then FIELD=VALUE pairs.") var items: [String] = []

        func run() throws {
            try SyncNodeCommand.recordItem(node: node, kind: kind, items: items, force: false, mustExist: true)
        }
    }

    static func recordItem(node: NodeOptions, kind: String, items: [String], force: Bool, mustExist: Bool, confirm: Bool = false) throws {
        let result = try node.withStore { store in
            // A record kind's first argument without `=` is its id.
            let isRecord = try store.programme().kind(kind)?.collection != nil
            var rest = items[...]
            var recordID: String?
            if isRecord, let first = rest.first, !first.contains("=") {
                recordID = first
                rest = rest.dropFirst()
            }
            return try store.recordProgrammeItem(
                kind: kind, recordID: recordID, input: try programmeInput(Array(rest)), today: localToday(), force: force,
                mustExist: isRecord ? mustExist : nil, confirm: confirm)
        }
        // The id on stdout (a script corrects the entry by it); what was filled in on stderr.
        emit(result.recordID ?? "")
        for note in result.notes { FileHandle.standardError.write(Data("\(note)\n".utf8)) }
    }

    struct Project: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Projects: show one with its history, events, funds and activities (list them with `syncnode report projects`).",
            discussion:
                "Add one with `syncnode add project ID ...`, change it with `syncnode update project ID ...`, record progress with `syncnode add project_event project=ID ...`.",
            subcommands: [Show.self])

        struct Show: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "One project: its fields, every change (who, when), its events, money and activities.")
            @OptionGroup var node: NodeOptions
            @OptionGroup var output: OutputOptions
            @Argument(help: "The project id.") var id: String

            func run() throws {
                let (record, history, entries, labels, money, authors) = try node.withStore { store in
                    guard let record = try store.record("projects", id), !record.deleted else {
                        throw SyncNodeError(.notFound, "no project \(id) here")
                    }
                    // The project's entries, and the reversals that cancel them (a reversal need not name the project).
                    var entries: [LedgerRow] = []
                    for ledger in ["project_events", "allocations", "disbursements", "expenditures", "activities"] {
                        let rows = try store.ledger(ledger)
                        let mine = rows.filter { $0.fields["project"] == .text(id) && !MoneyModel.isReversal($0.fields) }
                        let cancelling = Set(mine.flatMap(\.reversedBy))
                        entries += mine + rows.filter { MoneyModel.isReversal($0.fields) && cancelling.contains($0.entryID) }
                    }
                    return (
                        record, try store.history("projects", id),
                        entries.sorted { ($0.fields["date"]?.description ?? "", $0.ts) < ($1.fields["date"]?.description ?? "", $1.ts) },
                        try store.nodeLabels(), try store.projectMoney(project: id)[id] ?? ProjectMoney(),
                        try store.authors(of: entries.map(\.ts) + (try store.history("projects", id)).map(\.ts))
                    )
                }
                if output.json {
                    emit(
                        Presenter.json([
                            "project": Presenter.recordObject(record), "history": history.map { Presenter.historyObject($0, author: authors[$0.ts]) },
                            "entries": entries.map { Presenter.ledgerObject($0, author: authors[$0.ts]) },
                            "allocated": Presenter.total(money.allocated),
                            "disbursed": Presenter.total(money.disbursed), "spent": Presenter.total(money.spent),
                        ]))
                    return
                }
                emit(Presenter.recordTable(record))
                emit(
                    "安排 \(ProgrammeCheck.wan(money.allocated))万元，拨付 \(ProgrammeCheck.wan(money.disbursed))万元，支出 \(ProgrammeCheck.wan(money.spent))万元")
                emit("\nevents and money (by the day they happened):")
                var table = TextTable(["date", "ledger", "what", "recorded by"])
                for e in entries {
                    let what = e.fields.filter { !["project", "county", "date", "kind", "work_area"].contains($0.key) }.sorted { $0.key < $1.key }
                        .map { "\($0.key)=\($0.key.hasSuffix("_fen") ? Money.wan(Int64($0.value.description) ?? 0) + "万元" : $0.value.description)" }
                        .joined(separator: " ")
                    table.add([
                        e.fields["date"]?.description ?? "", e.ledger,
                        what + (!e.counts ? "（不计）" : MoneyModel.isReversal(e.fields) ? "（撤销）" : e.reversedBy.isEmpty ? "" : "（已撤销）"),
                        Presenter.who(e.ts, labels: labels, authors: authors),
                    ])
                }
                emit(table.render())
                emit("\nchanges:")
                emit(Presenter.historyTable(history, labels: labels, authors: authors))
            }
        }
    }

    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The programme plan this node validates and reports by.", subcommands: [Show.self, Install.self])

        struct Show: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Counties with their yearly aid, work areas and kinds.")
            @OptionGroup var node: NodeOptions
            @OptionGroup var output: OutputOptions

            func run() throws {
                let plan = try node.withStore { try $0.programme() }
                if output.json {
                    let encoder = JSONEncoder()
                    encoder.keyEncodingStrategy = .convertToSnakeCase
                    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                    emit(String(decoding: (try? encoder.encode(plan)) ?? Data(), as: UTF8.self))
                    return
                }
                emit("\(plan.title) (\(plan.programme) v\(plan.version), \(plan.yearRange.lowerBound)–\(plan.yearRange.upperBound))")
                var counties = TextTable(["county", "name", "carrier unit", "prefixes", "aid per year (万元)", "total (万元)"])
                for c in plan.counties {
                    let years = plan.yearRange.map { c.yearlyAidFen[$0] ?? 0 }
                    counties.add([
                        c.id, c.name, c.carrierUnit, c.prefixes.joined(separator: " "), Set(years).count == 1 ? Money.wan(years[0]) : "varies",
                        Money.wan(years.reduce(0, +)),
                    ])
                }
                emit(counties.render())
                var areas = TextTable(["work area", "name", "lead unit", "partner units"])
                for w in plan.workAreas { areas.add([w.id, w.name, w.leadUnit, (w.partnerUnits ?? []).joined(separator: "、")]) }
                emit(areas.render())
                for group in plan.groups ?? [] {
                    let roles = ["lead": "牵头", "partner": "配合"]
                    let units = group.units.map { u in
                        u.unit + ([u.role.flatMap { roles[$0] }, u.duty].compactMap { $0 }.joined(separator: "，").nonEmpty.map { "（\($0)）" } ?? "")
                    }
                    emit("\(group.name)：" + units.joined(separator: "、"))
                }
                emit("first-batch projects: \((plan.firstBatchProjects ?? []).count)")
                emit("kinds: " + plan.kinds.map { "\($0.id) (\($0.name))" }.joined(separator: ", "))
            }
        }

        struct Install: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "HQ: replace the plan with FILE (JSON, the format of docs/PROGRAMME.md); it reaches every node with the next sync.")
            @OptionGroup var node: NodeOptions
            @Argument(help: "The plan file.") var file: String
            @Flag(help: "Install a plan that leaves out counties whose data this node holds (it stays, listed in review).")
            var dropCountiesWithData = false

            func run() throws {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw failure(SyncNodeError(.invalidInput, "cannot read \(file)"))
                }
                let plan = try node.withStore { try $0.installPlan(data, droppingCountiesWithData: dropCountiesWithData) }
                emit("installed \(plan.programme) v\(plan.version): \(plan.counties.count) counties, \(plan.kinds.count) kinds")
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import a table of records from CSV: the task decomposition table (`import task FILE.csv`), projects, supervision items.",
            discussion: """
                The first row names the fields (`id` and the kind's fields, as `add --help` lists them); UTF-8, with or without BOM.
                Every row is checked against the plan first: nothing is written unless all rows pass. An existing id is updated.
                A large table is written in several transactions; if the import stops between two, importing the file again completes it.
                """)
        @OptionGroup var node: NodeOptions
        @Argument(help: "task, project or supervision.") var kind: String
        @Argument(help: "The CSV file.") var file: String

        func run() throws {
            guard let data = FileManager.default.contents(atPath: file) else { throw failure(SyncNodeError(.invalidInput, "cannot read \(file)")) }
            let table: [[String]]
            do {
                table = try CSV.parse(String(decoding: data, as: UTF8.self))
            } catch {
                throw failure(SyncNodeError(.invalidInput, "\(file): \(error.reason)"))
            }
            guard let header = table.first, let idColumn = header.firstIndex(of: "id") else {
                throw failure(SyncNodeError(.invalidInput, "\(file): the first row must name the fields, with an `id` column"))
            }
            let rows = table.dropFirst().filter { !$0.allSatisfy(\.isEmpty) }.map { cells in
                (
                    recordID: idColumn < cells.count ? cells[idColumn] : "",
                    input: zip(header, cells).enumerated().filter { $0.offset != idColumn && !$0.element.1.isEmpty }.map {
                        ($0.element.0, $0.element.1)
                    }
                )
            }
            let count = try node.withStore { try $0.importRecords(kind: kind, rows: rows, today: localToday()) }
            emit("imported \(count) \(kind) records")
        }
    }

    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "HQ's merged view over what this node holds: \(Store.reportNames.joined(separator: ", ")).",
            discussion: "Amounts in 万元 with two decimals; times in the local time zone (JSON keeps fen and UTC milliseconds).")
        @OptionGroup var node: NodeOptions
        @Argument(help: "\(Store.reportNames.joined(separator: ", ")).") var name: String
        @Option(help: "Only this county (its id or its name: lintan, 临潭县).") var county: String?
        @Option(help: "Only this year.") var year: Int?
        @Option(help: "Only this work area (its id or its name).") var workArea: String?
        @Flag(help: "Print stable JSON instead of a table.") var json = false
        @Flag(help: "Print CSV (UTF-8 with BOM, for Excel).") var csv = false
        @Flag(help: "activities: only entries HQ approved (`syncnode submission approve`).") var approved = false

        func validate() throws {
            if json && csv { throw ValidationError("give --json or --csv, not both") }
            if approved && name != "activities" { throw ValidationError("--approved filters the activities report only") }
        }

        func run() throws {
            let table = try node.withStore { store in
                let plan = try store.programme()
                let countyID = try county.map { text throws(SyncNodeError) in
                    if let c = plan.county(text) ?? plan.counties.first(where: { $0.name == text || (text.count >= 2 && $0.name.hasPrefix(text)) }) {
                        return c.id
                    }
                    let hint =
                        ProgrammeCheck.nearest(text, in: plan.counties.map(\.id) + plan.counties.map(\.name)).map { "did you mean \($0)? " } ?? ""
                    throw SyncNodeError.invalid(
                        "no county '\(text)' in the plan; \(hint)counties: \(plan.counties.map { "\($0.id) (\($0.name))" }.joined(separator: ", "))")
                }
                let areaID = try workArea.map { text throws(SyncNodeError) in
                    if let w = plan.workArea(text) ?? plan.workAreas.first(where: { $0.name == text }) { return w.id }
                    let hint =
                        ProgrammeCheck.nearest(text, in: plan.workAreas.map(\.id) + plan.workAreas.map(\.name)).map { "did you mean \($0)? " } ?? ""
                    throw SyncNodeError.invalid(
                        "no work area '\(text)'; \(hint)work areas: \(plan.workAreas.map { "\($0.id) (\($0.name))" }.joined(separator: ", "))")
                }
                return try store.report(
                    name, filter: ReportFilter(county: countyID, year: year, workArea: areaID, approvedOnly: approved), today: localToday())
            }
            if json {
                emit(ReportFormat.json(table))
            } else if csv {
                FileHandle.standardOutput.write(ReportFormat.csv(table))
            } else {
                emit(ReportFormat.text(table))
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write reports for Excel users: one XLSX workbook (a sheet per report) or CSV files (UTF-8 with BOM).",
            discussion: "e.g. syncnode export --format xlsx --out hq-2017.xlsx funds projects; syncnode export --format csv --out reports/")
        @OptionGroup var node: NodeOptions
        @Option(help: "xlsx (one workbook, PATH is the file) or csv (PATH is a directory for REPORT.csv files).") var format: String
        @Option(help: "The workbook file, or the directory for CSV files.") var out: String
        @Argument(help: "Reports (default: all): \(Store.reportNames.joined(separator: ", ")).") var reports: [String] = []

        func validate() throws {
            guard ["xlsx", "csv"].contains(format) else { throw ValidationError("--format takes xlsx or csv") }
            if let unknown = reports.first(where: { !Store.reportNames.contains($0) }) {
                throw ValidationError("no report '\(unknown)'; reports: \(Store.reportNames.joined(separator: ", "))")
            }
        }

        func run() throws {
            let names = reports.isEmpty ? Store.reportNames : reports
            let tables = try node.withStore { store in try names.map { try store.report($0, today: localToday()) } }
            if format == "xlsx" {
                try withFailure { () throws(SyncNodeError) in try Workbook.write(tables, to: out) }
                emit(out)
                return
            }
            let dir = URL(fileURLWithPath: out)
            do {
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                for t in tables { try ReportFormat.csv(t).write(to: dir.appendingPathComponent("\(t.name).csv"), options: .atomic) }
            } catch {
                throw failure(SyncNodeError(.readOnly, "cannot write into \(out): \(error.localizedDescription)"))
            }
            emit(tables.map { dir.appendingPathComponent("\($0.name).csv").path }.joined(separator: "\n"))
        }
    }
}

extension ReportFormat {
    static func text(_ t: ReportTable) -> String {
        let t = t.forPeople
        var table = TextTable(t.columns.map(\.label))
        for row in t.rows { table.add(zip(row, t.columns).map { display($0, $1.type) }) }
        return t.title + "\n" + table.render()
    }
}

/// RFC 4180 CSV: commas, double quotes (a quote inside a quoted cell is doubled), CRLF or LF.
enum CSV {
    struct Malformed: Error {
        var reason: String
    }

    static func parse(_ text: String) throws(Malformed) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var cell = ""
        var quoted = false
        var chars = (text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text).makeIterator()
        var line = 1
        while let c = chars.next() {
            if quoted {
                if c == "\"" {
                    var after = chars
                    if after.next() == "\"" {
                        cell.append("\"")
                        chars = after
                    } else {
                        quoted = false
                    }
                } else {
                    if c == "\n" { line += 1 }
                    cell.append(c)
                }
                continue
            }
            switch c {
            case "\"" where cell.isEmpty: quoted = true
            case "\"": throw Malformed(reason: "line \(line): a quote inside an unquoted cell")
            case ",":
                row.append(cell)
                cell = ""
            case "\r\n", "\n", "\r":
                row.append(cell)
                rows.append(row)
                row = []
                cell = ""
                line += 1
            default: cell.append(c)
            }
        }
        if quoted { throw Malformed(reason: "line \(line): a quoted cell is not closed") }
        if !cell.isEmpty || !row.isEmpty {
            row.append(cell)
            rows.append(row)
        }
        return rows
    }
}

extension String {
    /// The string, or nil when it is empty.
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}
