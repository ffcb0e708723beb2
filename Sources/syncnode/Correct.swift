import ArgumentParser
import SyncNode
import SyncProtocol

extension SyncNodeCommand {
    struct Correct: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Correct (更正) or withdraw (撤销) a recorded entry: one transaction holding its reversal and the corrected entry.",
            discussion: """
                Entries never change. `syncnode correct ID amount=120万` records a reversal of entry ID (everything it counted
                under, with the opposite amounts, so every report moves together) and a new entry with the change, checked
                like `syncnode add`. `syncnode correct ID --undo` only withdraws it. Entry ids are listed by `ledger list`,
                `project show` and the web page of this node's work.
                """)

        @OptionGroup var node: NodeOptions
        @Argument(help: "The id of the entry to correct.") var id: String
        @Argument(help: "FIELD=VALUE pairs in the plan's words: what changes.") var changes: [String] = []
        @Option(help: "The ledger the entry is in, when several ledgers use the id.") var ledger: String?
        @Flag(help: "Withdraw the entry (撤销) without recording a corrected one.") var undo = false
        @Flag(help: "Record a correction the checks find unlikely.") var confirm = false

        func validate() throws {
            if undo && !changes.isEmpty { throw ValidationError("--undo withdraws the entry; give FIELD=VALUE without --undo to correct it") }
            if !undo && changes.isEmpty { throw ValidationError("say what changes (FIELD=VALUE, e.g. amount=120万), or --undo to withdraw the entry") }
        }

        func run() throws {
            let input = try programmeInput(changes)
            let done = try node.withStore { store in
                try store.correctEntry(id, ledger: ledger, changes: input, today: localToday(), confirm: confirm)
            }
            var line = "withdrew \(done.original.ledger)/\(id) (reversal \(done.reversalID))"
            if let corrected = done.correctedID { line += "; corrected entry \(corrected)" }
            if !done.notes.isEmpty { line += " (" + done.notes.joined(separator: "; ") + ")" }
            emit(line)
        }
    }
}
