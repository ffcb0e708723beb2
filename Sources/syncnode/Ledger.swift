import ArgumentParser
import SyncNode
import SyncProtocol

extension SyncNodeCommand {
    struct Ledger: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Append-only ledgers: money in fen, counts of people and events.",
            subcommands: [Append.self, List.self])
    }
}

extension SyncNodeCommand.Ledger {
    struct Append: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Append an immutable entry: FIELD=TEXT or FIELD:=NUMBER (amounts in fen).",
            discussion:
                "Entries never change. Correct a mistake with --reverses ID: the reversal takes the entry's county and the opposite of its amounts (give county=… when several counties use the id); an entry is reversed once."
        )

        @OptionGroup var node: NodeOptions
        @Argument(help: "Ledger name, such as disbursements.") var ledger: String
        @Argument(help: "FIELD=TEXT or FIELD:=NUMBER.") var assignments: [String] = []
        @Option(help: "Entry id (default: a fresh random id).") var id: String?
        @Option(help: "The id of the entry this one reverses.") var reverses: String?

        func validate() throws {
            // A reversal may give no fields: it takes the county and the opposite amounts of the entry.
            if reverses != nil && assignments.isEmpty { return }
            try validateAssignments(assignments, example: "amount:=5000000")
        }

        func run() throws {
            var fields = try assignments.map { a in try AssignmentParser.parse(a) }
            if let reverses { fields.append(FieldAssignment(Names.reversesField, .text(reverses))) }
            let t = try node.record([.append(ledger: ledger, entryID: id, fields: fields)])
            if case .append(let entry)? = t.changes.first { emit(entry.entryID) }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a ledger's entries, oldest first.")
        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions
        @Argument var ledger: String

        func run() throws {
            let (entries, labels, authors) = try node.withStore { store in
                if let unknown = try store.unknownName(ledger, ledger: true) { throw SyncNodeError(.notFound, unknown) }
                let entries = try store.ledger(ledger)
                return (entries, try store.nodeLabels(), try store.authors(of: entries.map(\.ts)))
            }
            emit(
                output.json
                    ? Presenter.json(entries.map { Presenter.ledgerObject($0, author: authors[$0.ts]) })
                    : Presenter.ledgerTable(entries, labels: labels, authors: authors))
        }
    }
}
