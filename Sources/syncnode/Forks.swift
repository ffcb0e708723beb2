import ArgumentParser
import Foundation
import SyncNode
import SyncProtocol

extension SyncNodeCommand {
    struct Forks: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Nodes that signed two histories (two transactions under one number), with the copies not kept here.",
            discussion: """
                A forged fork, or one node's identity running on two machines (a backup restored on a second machine \
                while the first still runs), shows here wherever the two histories meet. Every node keeps the history HQ \
                accepted first; the other copies are kept as evidence. With NODE (its id, or its label): each copy, with \
                where it came from and what it wrote.
                """)
        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "A node's id or label: list the copies of its transactions that this node does not keep.") var origin: String?

        func run() throws {
            let (forks, copies, labels, me) = try node.withStore { store in
                let labels = try store.nodeLabels()
                var copies: [ForkCopy] = []
                if let origin {
                    guard let id = NodeID(hex: origin) ?? labels.first(where: { $0.value == origin })?.key else {
                        throw SyncNodeError(.notFound, "no node \(origin) is known here; give a node id or a label from `syncnode node list`")
                    }
                    copies = try store.forkCopies(of: id)
                }
                return (try store.forks(), copies, labels, store.info.nodeID)
            }
            func whose(_ id: NodeID) -> String { id == me ? "this node" : (labels[id] ?? id.short) }
            if origin != nil {
                if output.json {
                    emit(
                        Presenter.json(
                            copies.map { c in
                                [
                                    "origin": c.origin.hex, "seq": c.seq, "clock": c.clock.description, "withdrawn": c.withdrawn, "source": c.source,
                                    "seen": NSNumber(value: c.seen), "sha256": c.digest, "signature": c.signature, "author": c.author ?? NSNull(),
                                    "changes": c.changes,
                                ] as [String: Any]
                            }))
                    return
                }
                if copies.isEmpty { note("this node keeps every transaction of that node it has seen: no other copies") }
                var table = TextTable(["transaction", "what happened here", "from", "seen (\(Presenter.localZone))", "author", "wrote"])
                for c in copies {
                    table.add([
                        "\(c.origin.short)/\(c.seq)", c.withdrawn ? "kept once, given up" : "seen, not kept", c.source, Presenter.localTime(c.seen),
                        c.author ?? "", c.changes.joined(separator: "; "),
                    ])
                }
                emit(table.render())
                return
            }
            if output.json {
                emit(
                    Presenter.json(
                        forks.map { f in
                            [
                                "origin": f.origin.hex, "label": labels[f.origin] ?? NSNull(), "firstSeq": f.firstSeq, "seen": f.seen,
                                "withdrawn": f.withdrawn, "firstSeen": NSNumber(value: f.firstSeen),
                            ] as [String: Any]
                        }))
                return
            }
            if forks.isEmpty {
                note("no node has been seen signing two histories")
                return
            }
            var table = TextTable(["node", "whose", "parted at", "copies seen, not kept", "copies given up", "first seen (\(Presenter.localZone))"])
            for f in forks {
                table.add([
                    f.origin.short, whose(f.origin), "\(f.firstSeq)", "\(f.seen)", "\(f.withdrawn)", Presenter.localTime(f.firstSeen),
                ])
            }
            emit(table.render())
            note(
                "each node keeps the history HQ accepted first; `syncnode forks NODE` lists the other copies. Revoke a node whose key is used on two machines (`syncnode node revoke`) and enrol it anew"
            )
        }
    }
}
