import Foundation
import GRDB
import SyncProtocol

extension Programme {
    /// The district's 2017 plan (facts only), embedded in the binary: the default programme.
    public static let embedded: Programme = {
        do {
            return try decode(Data(PackageResources.dongli_2017_json))
        } catch {
            fatalError("the embedded plan does not load: \(error)")
        }
    }()

    /// The embedded plan's file text.
    public static var embeddedText: Data { Data(PackageResources.dongli_2017_json) }

    /// Reads a plan file (JSON); refuses one that does not parse or describes an impossible plan.
    public static func decode(_ data: Data) throws(SyncNodeError) -> Programme {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let plan: Programme
        do {
            plan = try decoder.decode(Programme.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw .invalid("the plan lacks `\(Self.fileKey(key))` at \(Self.path(context.codingPath)); see docs/PROGRAMME.md for the format")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
            let DecodingError.dataCorrupted(context)
        {
            throw .invalid("the plan is not valid at \(Self.path(context.codingPath)): \(context.debugDescription)")
        } catch {
            throw .invalid("the plan is not readable JSON: \(error)")
        }
        let problems = plan.problems()
        guard problems.isEmpty else { throw .invalid("the plan is not usable: " + problems.joined(separator: "; ")) }
        return plan
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.isEmpty ? "the top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? fileKey($0) }.joined(separator: ".")
    }

    /// A key as the file spells it (`work_areas`, not the decoder's `workAreas`).
    private static func fileKey(_ key: any CodingKey) -> String {
        key.stringValue.reduce(into: "") { out, c in
            if c.isUppercase {
                out += "_" + c.lowercased()
            } else {
                out.append(c)
            }
        }
    }
}

/// The plan a node validates by (see `Store.planState`).
public struct PlanState: Sendable {
    public var plan: Programme
    /// Why HQ's latest plan cannot be read by this version, when it cannot.
    public var unreadable: String?
}

extension Store {
    /// The reference collection HQ writes the plan into (record `plan`: its JSON text).
    public static let programmeCollection = PolicyRules.programmeCollection

    /// The plan this node validates and labels by: the one HQ last wrote (replicated), or the
    /// embedded default before any arrived.
    public func programme() throws(SyncNodeError) -> Programme { try planState().plan }

    /// The plan this node validates by, and why it is not HQ's latest when HQ's cannot be read
    /// here (a newer format: the node keeps validating by the embedded default, and the review
    /// queue says so). Decoded once per version of the plan's record.
    public func planState() throws(SyncNodeError) -> PlanState {
        guard let record = try record(Self.programmeCollection, "plan"), case .text(let json)? = record.fields["json"] else {
            return PlanState(plan: .embedded, unreadable: nil)
        }
        if let cached = planCache.withLock({ $0 }), cached.version == record.updated { return cached.state }
        let state: PlanState
        do {
            state = PlanState(plan: try Programme.decode(Data(json.utf8)), unreadable: nil)
        } catch {
            state = PlanState(plan: .embedded, unreadable: error.message)
        }
        planCache.withLock { $0 = (record.updated, state) }
        return state
    }

    /// HQ writes a plan: its text into the `programme` collection and the county record-id
    /// prefixes into the policy, in one transaction, so every node validates the same way after
    /// one sync. Only HQ may (the policy refuses it from any other node).
    @discardableResult
    public func installPlan(_ text: Data, droppingCountiesWithData: Bool = false) throws(SyncNodeError) -> Programme {
        let plan = try Programme.decode(text)
        let current = try programme()
        if plan.programme == current.programme, plan.version == current.version, plan != current {
            throw .invalid(
                "this plan has the name and version of the plan in use (\(plan.programme), version \(plan.version)) but other contents; give it a higher version, so that every node can tell the two apart. Nothing was written"
            )
        }
        // A county that leaves the plan leaves its records and entries without a county to count under.
        var holding: [String] = []
        for county in current.counties where plan.county(county.id) == nil {
            let (records, entries) = try dataHeld(by: county)
            if records + entries > 0 { holding.append("\(county.name) (\(county.id): \(records) records, \(entries) entries)") }
        }
        if !holding.isEmpty, !droppingCountiesWithData {
            throw SyncNodeError.invalid(
                "this plan leaves out counties that still hold data here: \(holding.joined(separator: ", ")); keep them in the plan, or drop them knowingly (their data stays, listed in review). Nothing was written"
            ).next(.dropCountiesKnowingly)
        }
        var intents: [Intent] = [
            .put(
                collection: Self.programmeCollection, recordID: "plan",
                fields: [
                    FieldAssignment("json", .text(String(decoding: text, as: UTF8.self))), FieldAssignment("name", .text(plan.programme)),
                    FieldAssignment("version", .int(Int64(plan.version))),
                ])
        ]
        for c in plan.counties {
            intents.append(
                .put(
                    collection: PolicyRules.policyCollection, recordID: "county-\(c.id)",
                    fields: [FieldAssignment("prefixes", .text(c.prefixes.joined(separator: ",")))]))
        }
        try commit(intents)
        // The review's triggers and lists for the new plan now, not at the first view.
        try refreshReviewIndex()
        return plan
    }

    /// How many records (by the county's record-id prefixes) and ledger entries (by their
    /// `county` field) this node holds of `county`.
    func dataHeld(by county: Programme.County) throws(SyncNodeError) -> (records: Int, entries: Int) {
        try read { db in
            var records = 0
            for prefix in county.prefixes where !prefix.isEmpty {
                records +=
                    try Int.fetchOne(
                        db, sql: "SELECT count(*) FROM record WHERE substr(record_id, 1, ?) = ?", arguments: [prefix.count, prefix]) ?? 0
            }
            let entries =
                try Int.fetchOne(db, sql: "SELECT count(*) FROM ledger_entry WHERE json_extract(fields, '$.county') = ?", arguments: [county.id]) ?? 0
            return (records, entries)
        }
    }

    /// Records one item of the plan's `kind` from what a clerk typed, after checking it against
    /// the plan; nothing is written when anything is wrong (the error lists every problem).
    /// Record kinds take `recordID` (a project, task or supervision item); `mustExist` says
    /// whether it is an update of an existing one or a new one.
    @discardableResult
    public func recordProgrammeItem(
        kind kindID: String, recordID: String?, input: [(String, String)], today: String, force: Bool = false, mustExist: Bool? = nil,
        confirm: Bool = false
    ) throws(SyncNodeError) -> (recordID: String?, fields: [String: Value], seq: UInt64, notes: [String]) {
        try refuseRecordedSubmission()
        let plan = try programme()
        guard let kind = plan.kind(kindID) else {
            let ids = plan.kinds.map(\.id)
            let hint = ProgrammeCheck.nearest(kindID, in: ids).map { "did you mean \($0)? " } ?? ""
            throw .invalid("the plan has no kind '\(kindID)'; \(hint)kinds: \(ids.joined(separator: ", "))")
        }
        var input = input
        // Only the project the input names is read (a clerk's write does not scan the node).
        let projectID = input.first(where: { $0.0 == "project" })?.1
        let project = try projectID.flatMap { id throws(SyncNodeError) in try record("projects", id) }.flatMap { $0.deleted ? nil : $0 }
        let stage = try projectID.flatMap { id throws(SyncNodeError) in try projectStage(of: id) }
        // An entry about a project counts for the project's county unless it names one.
        if kind.isLedger, !input.contains(where: { $0.0 == "county" }), case .text(let county)? = project?.fields["county"] {
            input.append(("county", county))
        }
        let context = ProgrammeCheck.Context(
            site: info.site, role: info.role, today: today, projectExists: { $0 == projectID && project != nil },
            projectStage: { $0 == projectID ? stage : nil })
        var existing: RecordView?
        if let collection = kind.collection {
            guard let recordID, !recordID.isEmpty else {
                throw SyncNodeError.invalid("a \(kind.id) needs an id, e.g. \(kind.example ?? "ID FIELD=VALUE")")
                    .said(zh: "\(kind.name)需要编号")
            }
            existing = try record(collection, recordID).flatMap { $0.deleted ? nil : $0 }
            if mustExist == true, existing == nil {
                throw SyncNodeError(.notFound, "no \(kind.id) \(recordID) here").said(zh: "本节点没有\(kind.name)“\(recordID)”")
            }
            if mustExist == false, let existing {
                let name = existing.fields["name"] ?? existing.fields["title"] ?? .null
                throw SyncNodeError(.nodeExists, "\(kind.id) \(recordID) exists already (\(name)); change it instead of adding it")
                    .said(zh: "\(kind.name)“\(recordID)”已存在（\(name)）；要修改它，请按“修改已有记录”录入")
            }
        }
        var fields: [String: Value]
        switch ProgrammeCheck(plan).check(kind: kind, input: input, context: context, force: force, partial: existing != nil) {
        case .success(let f): fields = f
        case .failure(let problems):
            var error = SyncNodeError.invalid(problems.list.map(\.description).joined(separator: "\n"))
            error.problems = problems.list
            error.nextStep = problems.list.lazy.compactMap(\.nextStep).first
            throw error
        }
        if let collection = kind.collection, let recordID {
            let t = try commit([
                .put(collection: collection, recordID: recordID, fields: fields.sorted { $0.key < $1.key }.map { FieldAssignment($0.key, $0.value) })
            ])
            return (recordID, fields, t.seq, [])
        }
        let known = projectID.map { id in KnownProject(id: id, county: project?.fields["county"]?.description, stage: stage) }
        let notes = try vetEntry(kind: kind, fields: &fields, plan: plan, confirm: confirm, known: project == nil ? nil : known)
        fields["kind"] = .text(kind.id)
        let t = try commit([
            .append(ledger: kind.ledger!, entryID: recordID, fields: fields.sorted { $0.key < $1.key }.map { FieldAssignment($0.key, $0.value) })
        ])
        // A ledger entry is named by the id it was given (random unless chosen).
        var entryID = recordID
        if case .append(let e)? = t.changes.first { entryID = e.entryID }
        return (entryID, fields, t.seq, notes)
    }

    /// The money model's checks of an entry about to be recorded: its budget year filled in from
    /// its date when that is a year of the plan (said in the notes returned), then what is
    /// implausible about it or does not fit what is recorded (`ProgrammeCheck.plausibility`,
    /// `crossChecks`). Refused findings throw; unlikely ones throw unless `confirm`.
    ///
    /// `replacing`: the fields of the entry this one corrects (withdrawn in the same
    /// transaction): its amount no longer counts in the totals the cross-checks compare with.
    func vetEntry(
        kind: Programme.Kind, fields: inout [String: Value], plan: Programme, confirm: Bool, replacing: [String: Value]? = nil,
        known: KnownProject? = nil
    )
        throws(SyncNodeError) -> [String]
    {
        var notes: [String] = []
        if kind.hasBudgetYear, fields[Programme.budgetYearField.name] == nil, let year = MoneyModel.budgetYear(fields), plan.yearRange.contains(year)
        {
            fields[Programme.budgetYearField.name] = .text(String(year))
            notes.append("资金年度\(year)（按日期\(fields["date"]?.description ?? "")）")
        }
        let check = ProgrammeCheck(plan)
        var facts = try moneyFacts(kind: kind, fields: fields, plan: plan, known: known)
        if let old = replacing, let p = MoneyModel.placement(old) {
            if p.project != nil, p.project == MoneyModel.placement(fields)?.project {
                if kind.money == "allocated" { facts.projectAllocated.subtract(p.amount) }
                if kind.money == "disbursed" { facts.projectDisbursed.subtract(p.amount) }
            }
            if kind.money == "disbursed", p.county == fields["county"]?.description, p.year == MoneyModel.budgetYear(fields) {
                facts.countyYearDisbursed.subtract(p.amount)
            }
        }
        let findings = check.plausibility(kind: kind, fields: fields) + check.crossChecks(kind: kind, fields: fields, facts: facts)
        if findings.contains(where: { $0.weight == .refused }) {
            // Everything found, what cannot be right first: the clerk mends it all at once.
            let ordered = findings.filter { $0.weight == .refused } + findings.filter { $0.weight != .refused }
            var error = SyncNodeError.invalid(ordered.map(\.message).joined(separator: "\n") + "\nnothing was written")
            error.problems = ordered.map { ProgrammeCheck.Problem(field: $0.field, message: $0.message) }
            throw error
        }
        if !confirm, !findings.isEmpty {
            var error = SyncNodeError.invalid(
                findings.map(\.message).joined(separator: "\n") + "\nnothing was written"
            ).next(.confirm)
            error.problems = findings.map { ProgrammeCheck.Problem(field: $0.field, message: $0.message) }
            error.needsConfirmation = true
            throw error
        }
        return notes
    }

    /// Imports rows of a record kind (the task decomposition table, say) in one transaction:
    /// every row is checked against the plan first, and nothing is written unless all pass. A
    /// row whose id exists updates that record. Returns the number of rows recorded.
    @discardableResult
    public func importRecords(kind kindID: String, rows: [(recordID: String, input: [(String, String)])], today: String) throws(SyncNodeError) -> Int
    {
        let plan = try programme()
        guard let kind = plan.kind(kindID), let collection = kind.collection else {
            throw .invalid(
                "'\(kindID)' is not a record kind of the plan; record kinds: \(plan.kinds.filter { $0.collection != nil }.map(\.id).joined(separator: ", "))"
            )
        }
        // Only the ids the file names are looked up (a project a row refers to is one of its
        // values): importing 100 rows costs the same beside 20,000 projects as beside none.
        let projects = try liveRecordIDs("projects", among: rows.flatMap { $0.input.map(\.1) })
        let existing = try liveRecordIDs(collection, among: rows.map(\.recordID))
        let context = ProgrammeCheck.Context(site: info.site, role: info.role, today: today, projectExists: { projects.contains($0) })
        var intents: [Intent] = []
        var problems: [String] = []
        var seen = Set<String>()
        for (n, row) in rows.enumerated() {
            let line = n + 2  // the header is line 1
            guard !row.recordID.isEmpty else {
                problems.append("line \(line): no id")
                continue
            }
            if !seen.insert(row.recordID).inserted { problems.append("line \(line): id \(row.recordID) appears twice") }
            switch ProgrammeCheck(plan).check(kind: kind, input: row.input, context: context, partial: existing.contains(row.recordID)) {
            case .success(let fields):
                intents.append(
                    .put(
                        collection: collection, recordID: row.recordID,
                        fields: fields.sorted { $0.key < $1.key }.map { FieldAssignment($0.key, $0.value) }))
            case .failure(let p):
                problems += p.list.map { "line \(line) (\(row.recordID)): \($0)" }
            }
        }
        guard problems.isEmpty else { throw .invalid("nothing was imported:\n" + problems.prefix(50).joined(separator: "\n")) }
        guard !intents.isEmpty else { throw .invalid("the file holds no rows") }
        // Every row passed: written in transactions of at most `Transaction.maxChanges` changes
        // (a table of thousands of rows is more than one may hold). Should the process stop
        // between two, the rows written are whole records, and importing the file again updates
        // them and writes the rest.
        var part: [Intent] = []
        var changes = 0
        for intent in intents {
            // A put writes its fields, and may bring a deleted record back (one change more).
            let size = if case .put(_, _, let fields) = intent { fields.count + 1 } else { 1 }
            if !part.isEmpty && changes + size > Transaction.maxChanges {
                try commit(part)
                part = []
                changes = 0
            }
            part.append(intent)
            changes += size
        }
        try commit(part)
        return intents.count
    }

    /// Each project's current stage: the stage of its latest event that names one.
    public func projectStages() throws(SyncNodeError) -> [String: String] {
        Self.latestEventValues(try ledger("project_events"), field: "stage").compactMapValues { if case .text(let s) = $0 { s } else { nil } }
    }

    /// One project's current stage, reading only that project's events and the ledger's
    /// reversals (a withdrawn event sets no stage, as in `projectStages`).
    func projectStage(of project: String) throws(SyncNodeError) -> String? {
        let cancelled = try cancelledEntries(ledger: "project_events")
        let events = try read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT entry_id, ts, fields FROM ledger_entry WHERE ledger = 'project_events' AND json_extract(fields, '$.project') = ?",
                arguments: [project]
            ).map { row in
                let ts = Timestamp(bytes: row["ts"] as Data)!
                let id: String = row["entry_id"]
                return LedgerRow(
                    ledger: "project_events", entryID: id, ts: ts, fields: LedgerJSON.decode(row["fields"]),
                    reversedBy: cancelled.contains([id, ts.node.hex]) ? ["(reversal)"] : [])
            }
        }
        guard case .text(let stage)? = Self.latestEventValues(events, field: "stage")[project] else { return nil }
        return stage
    }

    /// The value of `field` in each project's latest event that gives one: events are ordered by
    /// the day they happened, then by clock. Reversals and entries that count for nothing are not events.
    static func latestEventValues(_ events: [LedgerRow], field: String) -> [String: Value] {
        var latest: [String: (value: Value, date: String, ts: Timestamp)] = [:]
        for e in events where e.stands {
            guard case .text(let project)? = e.fields["project"], let value = e.fields[field] else { continue }
            let date = e.fields["date"]?.description ?? ""
            if let current = latest[project], (current.date, current.ts) > (date, e.ts) { continue }
            latest[project] = (value, date, e.ts)
        }
        return latest.mapValues(\.value)
    }
}

extension Store {
    /// The plan's kinds this node's policy lets it record at all (a county does not disburse;
    /// finance records money only): the web shows only the forms the node can use.
    public func recordableKinds() throws(SyncNodeError) -> [Programme.Kind] {
        let plan = try programme()
        let rules = try read { db in try Self.loadRules(db, shared: interns) }
        let author = Author(node: info.nodeID, site: info.site, role: info.role, label: info.label)
        return plan.kinds.filter { kind in
            let change: Change
            if let ledger = kind.ledger {
                change = .append(LedgerEntry(ledger: ledger, entryID: "probe", fields: ["county": .text(info.site)]))
            } else if let collection = kind.collection {
                let id = (rules.countyPrefixes[info.site]?.first ?? "") + "probe"
                change = .set(FieldWrite(collection: collection, recordID: id, field: "name", value: .text("probe")))
            } else {
                return false
            }
            return rules.violation(of: change, by: author) == nil
        }
    }

    /// Resolves a field's conflict: `text` becomes the value (typed as the plan gives the field;
    /// text where the plan does not name it); nil confirms the value currently kept.
    @discardableResult
    public func resolveConflict(collection: String, recordID: String, field: String, text: String?, today: String) throws(SyncNodeError)
        -> Transaction
    {
        var chosen = text.map { Value.text($0) }
        if let text {
            let context = ProgrammeCheck.Context(site: info.site, role: info.role, today: today)
            switch ProgrammeCheck(try programme()).value(collection: collection, field: field, text: text, context: context) {
            case .success(let typed)?: chosen = typed
            case .failure(let reason)?:
                var error = SyncNodeError.invalid("\(field): \(reason.text)")
                error.problems = [ProgrammeCheck.Problem(field: field, message: reason.text, zh: reason.zh, nextStep: reason.nextStep)]
                error.nextStep = reason.nextStep
                throw error
            case nil: break
            }
        }
        return try commit([.resolve(collection: collection, recordID: recordID, field: field, value: chosen)])
    }

    /// Resolves a conflict by keeping one of its versions as it is, named by its clock (what the
    /// conflicts page's "keep this value" sends): nothing is retyped. Keeping the current winner
    /// confirms it. Refused (not found) when the field has no version with that clock in conflict
    /// any more: another resolution came first.
    public func resolveConflict(collection: String, recordID: String, field: String, keeping ts: Timestamp) throws(SyncNodeError)
        -> Transaction
    {
        let items = try conflicts().filter { $0.collection == collection && $0.recordID == recordID && $0.field == field }
        let chosen: Value?
        if items.contains(where: { $0.winnerTs == ts }) {
            chosen = nil
        } else if let other = items.first(where: { $0.otherTs == ts }) {
            chosen = other.otherValue
        } else {
            throw SyncNodeError(
                .notFound, "\(collection)/\(recordID).\(field) has no value in conflict written at \(ts.hex); it was resolved meanwhile")
        }
        return try commit([.resolve(collection: collection, recordID: recordID, field: field, value: chosen)])
    }
}
