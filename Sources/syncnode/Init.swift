import ArgumentParser
import Foundation
import SyncNode

extension SyncNodeCommand {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a new node in the data directory and print its id.")

        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions

        @Option(help: "The site this node serves: hq, chengde, lintan, gangu, or a Dongli office.")
        var site: String

        @Option(help: "A human label for the node, such as lintan-office-1 (default: SITE-<id prefix>).")
        var label: String?

        func run() throws {
            do {
                let store = try Store.create(in: node.directory, site: site, label: label, clock: CLIClock.current)
                defer { try? store.close() }
                if output.json {
                    emit(Presenter.json(["node": store.info.nodeID.hex, "site": store.info.site, "label": store.info.label]))
                } else {
                    emit(store.info.nodeID.hex)
                    note("created node \(store.info.label) for site \(store.info.site) in \(node.directory.path)")
                }
            } catch {
                throw failure(error)
            }
        }
    }
}
