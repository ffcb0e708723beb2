import Foundation
import GRDB
import SyncProtocol

/// One ledger entry found by its id, with what a correction needs to know of it.
public struct FoundEntry: Sendable {
    public var row: LedgerRow
    public var kind: Programme.Kind?
}

/// What a correction recorded.
public struct Correction: Sendable {
    public var original: LedgerRow
    public var reversalID: String
    /// The corrected entry's id (none when the entry was only withdrawn).
    public var correctedID: String?
    public var seq: UInt64
    public var notes: [String]
}

extension Store {
    /// The entry `entryID` of the plan's ledgers (or of `ledger`), that stands (is not a
    /// reversal nor reversed); throws when there is none, or more than one.
    public func findEntry(_ entryID: String, ledger: String? = nil) throws(SyncNodeError) -> FoundEntry {
        let plan = try programme()
        let ledgers = ledger.map { [$0] } ?? Set(plan.kinds.compactMap(\.ledger)).sorted()
        var found: [LedgerRow] = []
        for name in ledgers {
            let ids = try read { db in
                try Row.fetchAll(db, sql: "SELECT 1 FROM ledger_entry WHERE ledger = ? AND entry_id = ? LIMIT 1", arguments: [name, entryID])
            }
            guard !ids.isEmpty else { continue }
            found += try self.ledger(name).filter { $0.entryID == entryID && !MoneyModel.isReversal($0.fields) }
        }
        guard !found.isEmpty else {
            throw SyncNodeError(.notFound, "no entry \(entryID) here\(ledger.map { " in ledger \($0)" } ?? "")").next(.listLedger(ledger))
        }
        guard found.count == 1, let row = found.first else {
            throw .invalid(
                "several entries have the id \(entryID) (\(found.map { "\($0.ledger) of \($0.origin.short)" }.joined(separator: ", "))); name the ledger"
            ).next(.nameTheLedger)
        }
        if let by = row.reversedBy.first { throw .invalid("entry \(entryID) is already withdrawn (reversed by \(by)); nothing was written") }
        let named = row.fields["kind"]?.description
        let kinds = plan.kinds(inLedger: row.ledger)
        return FoundEntry(row: row, kind: kinds.first { $0.id == named } ?? (kinds.count == 1 ? kinds[0] : nil))
    }

    /// Corrects a ledger entry in one transaction: a reversal that carries everything the
    /// original counted under with the opposite numbers (so every figure moves together), and,
    /// unless only withdrawing (`changes` empty), a corrected entry: the original's fields with
    /// `changes` (typed as the plan gives them) applied, checked like a new entry, the original's
    /// amounts no longer counted.
    public func correctEntry(_ entryID: String, ledger: String? = nil, changes: [(String, String)], today: String, confirm: Bool = false)
        throws(SyncNodeError) -> Correction
    {
        try refuseRecordedSubmission()
        let plan = try programme()
        let found = try findEntry(entryID, ledger: ledger)
        let original = found.row
        var reversal: [String: Value] = [:]
        for (name, value) in original.fields where !Names.isReservedEntryField(name) {
            switch value {
            case .int(let i):
                guard i != .min else { throw .invalid("entry \(entryID) holds \(name)=\(i), which has no opposite; it cannot be reversed") }
                reversal[name] = .int(-i)
            case .real(let d): reversal[name] = .real(-d)
            default: reversal[name] = value
            }
        }
        reversal[Names.reversesField] = .text(entryID)
        reversal[Names.reversesOriginField] = .text(original.origin.hex)
        var intents: [Intent] = [.append(ledger: original.ledger, entryID: nil, fields: Self.assignments(reversal))]
        var notes: [String] = []
        var corrected: [String: Value]?
        if !changes.isEmpty {
            guard let kind = found.kind else {
                throw .invalid("entry \(entryID) is of no kind of the plan; withdraw it and record it anew").next(.undoAndAddAnew)
            }
            let project = changes.last(where: { $0.0 == "project" })?.1 ?? original.fields["project"]?.description
            var exists = false
            if let project { exists = try record("projects", project).map { !$0.deleted } ?? false }
            let projectExists = exists
            let context = ProgrammeCheck.Context(
                site: info.site, role: info.role, today: today, projectExists: { $0 == project && projectExists })
            var fields = original.fields.filter { !Names.isReservedEntryField($0.key) }
            switch ProgrammeCheck(plan).check(kind: kind, input: changes, context: context, partial: true) {
            case .success(let typed):
                // Only what was given changes (the check also fills defaults such as today's date).
                let fieldsOfKind = plan.fields(of: kind)
                let given = Set(changes.map { change in fieldsOfKind.first { $0.name == change.0 }?.storedName ?? change.0 })
                for (name, value) in typed where given.contains(name) { fields[name] = value }
            case .failure(let problems):
                var error = SyncNodeError.invalid(problems.list.map(\.description).joined(separator: "\n"))
                error.problems = problems.list
                error.nextStep = problems.list.lazy.compactMap(\.nextStep).first
                throw error
            }
            // A budget year that came from the old date follows a new one.
            if changes.contains(where: { $0.0 == "date" }), !changes.contains(where: { $0.0 == Programme.budgetYearField.name }) {
                fields[Programme.budgetYearField.name] = nil
            }
            guard fields != original.fields.filter({ !Names.isReservedEntryField($0.key) }) else {
                throw SyncNodeError.invalid("the correction changes nothing; give a new value, or withdraw the entry").next(.newValueOrUndo)
            }
            notes = try vetEntry(kind: kind, fields: &fields, plan: plan, confirm: confirm, replacing: original.fields)
            corrected = fields
            intents.append(.append(ledger: original.ledger, entryID: nil, fields: Self.assignments(fields)))
        }
        let t = try commit(intents)
        var ids: [String] = []
        for case .append(let e) in t.changes { ids.append(e.entryID) }
        return Correction(original: original, reversalID: ids.first ?? "", correctedID: corrected == nil ? nil : ids.last, seq: t.seq, notes: notes)
    }

    static func assignments(_ fields: [String: Value]) -> [FieldAssignment] {
        fields.sorted { $0.key < $1.key }.map { FieldAssignment($0.key, $0.value) }
    }
}

extension Store {
    /// The entries of `ledgers` a reversal cancels, as [ledger, entry id] (read through the
    /// reversals and the entries they name, not the whole ledgers).
    public func withdrawnEntries(ledgers: Set<String>) throws(SyncNodeError) -> Set<[String]> {
        var out = Set<[String]>()
        for ledger in ledgers {
            for cancelled in try cancelledEntries(ledger: ledger) { out.insert([ledger, cancelled[0]]) }
        }
        return out
    }
}
