import ArgumentParser
import SyncNode

extension SyncNodeCommand {
    struct VectorCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "vector", abstract: "Print the node's version vector (usable as `bundle export --since`).")

        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let (vector, labels) = try node.withStore { store in (try store.vector(), try store.nodeLabels()) }
            if output.json {
                emit(Presenter.json(Presenter.vectorObject(vector)))
            } else {
                var table = TextTable(["origin", "label", "transactions"])
                for (origin, seq) in vector.entries.sorted(by: { $0.key < $1.key }) {
                    table.add([origin.hex, labels[origin] ?? "", String(seq)])
                }
                emit(table.render())
            }
        }
    }
}
