import ArgumentParser
import SyncNode

extension SyncNodeCommand {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the node's identity and what its replica holds.")
        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let (info, summary, peers, refusals, ownRefused, held) = try node.withStore { store in
                let refusals = try store.rejections()
                return (
                    store.info, try store.summary(), try store.peers().map { ($0, try store.unsentCount(to: $0)) }, refusals,
                    refusals.filter(store.isOwnWorkRefused), try store.heldTransactions()
                )
            }
            if output.json {
                emit(
                    Presenter.json([
                        "node": info.nodeID.hex, "site": info.site, "label": info.label, "transactions": summary.transactions,
                        "records": summary.records, "conflicts": summary.conflicts, "ledgerEntries": summary.ledgerEntries,
                        "ledgerDuplicates": summary.ledgerDuplicates, "vector": Presenter.vectorObject(summary.vector),
                        "clock": summary.clock.hex, "peers": peers.map { Presenter.peerObject($0.0, unsent: $0.1) },
                        "ownRefused": ownRefused.count, "refusedHere": refusals.count - ownRefused.count, "held": held.count,
                        "role": info.role.rawValue,
                    ]))
            } else {
                var table = TextTable(["", ""])
                table.add(["node", "\(info.label) (\(info.nodeID.hex))"])
                table.add(["site", info.site])
                table.add([
                    "transactions held",
                    "\(summary.transactions) from \(summary.vector.entries.count) node\(summary.vector.entries.count == 1 ? "" : "s")",
                ])
                table.add(["records", String(summary.records)])
                table.add(["ledger entries", String(summary.ledgerEntries)])
                table.add(["conflicts to review", String(summary.conflicts + summary.ledgerDuplicates)])
                if !ownRefused.isEmpty {
                    table.add(["REFUSED", "\(ownRefused.count) of this node's transactions were refused; see `syncnode rejections`"])
                }
                if !held.isEmpty { table.add(["held", "\(held.count) transactions wait for their node's approval"]) }
                table.add(["clock", "\(Presenter.localTime(summary.clock.millis)) \(Presenter.localZone), counter \(summary.clock.counter)"])
                emit(table.rows.map { "\($0[0]): \($0[1])" }.joined(separator: "\n"))
                if !peers.isEmpty { emit("\n" + Presenter.peersTable(peers)) }
            }
        }
    }
}
