import ArgumentParser
import SyncNode
import SyncProtocol

extension SyncNodeCommand {
    struct Conflicts: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List concurrent edits kept for review, or resolve one.",
            subcommands: [List.self, Resolve.self], defaultSubcommand: List.self)
    }
}

extension SyncNodeCommand.Conflicts {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List unresolved conflicts: the value kept and each concurrent one.")
        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let (items, labels) = try node.withStore { store in (try store.conflicts(), try store.nodeLabels()) }
            if output.json {
                emit(Presenter.json(items.map(Presenter.conflictObject)))
            } else if items.isEmpty {
                note("no conflicts")
            } else {
                emit(Presenter.conflictsTable(items, labels: labels))
            }
        }
    }

    struct Resolve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resolve a field's conflict by writing a value that replaces every concurrent version.",
            discussion: "Without a value, the value currently kept is confirmed.")
        @OptionGroup var node: NodeOptions
        @Argument var collection: String
        @Argument var id: String
        @Argument var field: String
        @Option(help: "The value to keep: TEXT, or :=NUMBER for a number.") var value: String?

        func run() throws {
            let t = try node.withStore { store in
                // A field the plan knows keeps the plan's type (`--value 70` for a number is 70, not
                // "70"); `:=` forces a number where the plan says nothing.
                if let raw = value, raw.hasPrefix(":=") {
                    let typed = try AssignmentParser.parse(field + raw).value
                    return try store.commit([.resolve(collection: collection, recordID: id, field: field, value: typed)])
                }
                return try store.resolveConflict(collection: collection, recordID: id, field: field, text: value, today: localToday())
            }
            note("resolved \(collection)/\(id).\(field) as transaction \(t.seq)")
        }
    }
}
