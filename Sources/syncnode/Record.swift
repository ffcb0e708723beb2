import ArgumentParser
import SyncNode
import SyncProtocol

extension SyncNodeCommand {
    struct Record: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write and read records (last-writer-wins fields).",
            subcommands: [Put.self, Get.self, Delete.self, List.self, History.self])
    }
}

extension SyncNodeCommand.Record {
    struct Put: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set fields of a record: FIELD=TEXT, FIELD:=NUMBER, FIELD:=null.",
            discussion: "All fields are written as one transaction. Putting to a deleted record brings it back.")

        @OptionGroup var node: NodeOptions
        @Argument(help: "Collection, such as projects.") var collection: String
        @Argument(help: "Record id, such as lintan-school-1.") var id: String
        @Argument(help: "FIELD=TEXT, FIELD:=NUMBER or FIELD:=null.") var assignments: [String] = []

        func validate() throws {
            try validateAssignments(assignments, example: "name=东丽小学")
        }

        func run() throws {
            let fields = try assignments.map { a in try AssignmentParser.parse(a) }
            let t = try node.record([.put(collection: collection, recordID: id, fields: fields)])
            note("recorded \(collection)/\(id) as transaction \(t.seq)")
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a record's current fields.")
        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions
        @Argument var collection: String
        @Argument var id: String

        func run() throws {
            guard let record = try node.withStore({ store in try store.record(collection, id) }) else {
                throw failure(SyncNodeError(.notFound, "no record \(collection)/\(id) on this node"))
            }
            emit(output.json ? Presenter.json(Presenter.fieldsObject(record.fields)) : Presenter.recordTable(record))
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a record (its history is kept; a later put brings it back).")
        @OptionGroup var node: NodeOptions
        @Argument var collection: String
        @Argument var id: String

        func run() throws {
            let t = try node.record([.delete(collection: collection, recordID: id)])
            note("deleted \(collection)/\(id) as transaction \(t.seq)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the records of a collection.")
        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions
        @Argument var collection: String
        @Flag(help: "Include deleted records.") var deleted = false

        func run() throws {
            let records = try node.withStore { store in
                if let unknown = try store.unknownName(collection, ledger: false) { throw SyncNodeError(.notFound, unknown) }
                return try store.records(collection, includeDeleted: deleted)
            }
            emit(output.json ? Presenter.json(records.map(Presenter.recordObject)) : Presenter.recordsTable(records))
        }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every version of every field of a record: who, when, what.")
        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions
        @Argument var collection: String
        @Argument var id: String

        func run() throws {
            let (entries, labels, authors) = try node.withStore { store in
                let history = try store.history(collection, id)
                return (history, try store.nodeLabels(), try store.authors(of: history.map(\.ts)))
            }
            if entries.isEmpty { throw failure(SyncNodeError(.notFound, "no record \(collection)/\(id) on this node")) }
            emit(
                output.json
                    ? Presenter.json(entries.map { Presenter.historyObject($0, author: authors[$0.ts]) })
                    : Presenter.historyTable(entries, labels: labels, authors: authors))
        }
    }
}
