import ArgumentParser
import Foundation
import SyncNode
import SyncWeb

extension SyncNodeCommand {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the node's identity, what its replica holds, its peers and (at HQ) every registered node's last contact.")
        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let (info, summary, peers, refusals, ownRefused, held, callers, forks, mirror, files) = try node.withStore { store in
                let refusals = try store.rejections()
                // HQ syncs with nobody itself: the counties call it. Its view of them is who called when.
                let callers = store.info.role == .hq ? try store.nodeHealth().filter { $0.entry.node != store.info.nodeID } : []
                return (
                    store.info, try store.summary(), try store.peers().map { ($0, try store.unsentCount(to: $0)) }, refusals,
                    refusals.filter(store.isOwnWorkRefused), try store.heldWork(), callers, try store.forks(), try store.mirrorStatus(),
                    try store.attachmentSummary()
                )
            }
            if output.json {
                emit(
                    Presenter.json([
                        "node": info.nodeID.hex, "site": info.site, "label": info.label, "transactions": summary.transactions,
                        "records": summary.records, "conflicts": summary.conflicts, "ledgerEntries": summary.ledgerEntries,
                        "ledgerDuplicates": summary.ledgerDuplicates, "vector": Presenter.vectorObject(summary.vector),
                        "clock": summary.clock.hex, "peers": peers.map { Presenter.peerObject($0.0, unsent: $0.1) },
                        "ownRefused": ownRefused.count, "refusedHere": refusals.count - ownRefused.count,
                        "held": held.map(\.transactions).reduce(0, +), "heldBytes": held.map(\.bytes).reduce(0, +),
                        "role": info.role.rawValue, "forkedNodes": forks.map(\.origin.hex),
                        "mirror": Self.mirrorObject(mirror, holding: summary.vector.total),
                        "files": ["held": files.held, "bytes": files.heldBytes, "missing": files.missing],
                        "nodes": Self.nodeObjects(callers),
                    ]))
            } else {
                var table = TextTable(["", ""])
                table.add(["node", "\(info.label) (\(info.nodeID.hex))"])
                table.add(["site", info.site])
                table.add([
                    "transactions stored",
                    "\(summary.transactions) from \(summary.vector.entries.count) node\(summary.vector.entries.count == 1 ? "" : "s")",
                ])
                table.add(["records", String(summary.records)])
                table.add(["ledger entries", String(summary.ledgerEntries)])
                table.add(["conflicts to review", String(summary.conflicts + summary.ledgerDuplicates)])
                if let own = forks.first(where: { $0.origin == info.nodeID }) {
                    table.add([
                        "TWO HISTORIES",
                        "this node's identity signed two histories from its transaction \(own.firstSeq) on: a second machine with this node's key (a copied data directory or backup), or a restore from an older copy. Nothing was lost: see `syncnode forks \(info.label)`. If no copy was restored here, ask HQ to revoke this node and enrol it anew",
                    ])
                }
                let others = forks.filter { $0.origin != info.nodeID }
                if !others.isEmpty {
                    table.add([
                        "two histories", "\(others.count) other node\(others.count == 1 ? "" : "s") signed two histories; see `syncnode forks`",
                    ])
                }
                if !ownRefused.isEmpty {
                    table.add(["REFUSED", "\(ownRefused.count) of this node's transactions were refused; see `syncnode rejections`"])
                }
                if !held.isEmpty {
                    table.add([
                        "held",
                        "\(held.map(\.transactions).reduce(0, +)) transactions (\(ByteText.describe(held.map(\.bytes).reduce(0, +)))) wait for their node's approval; see `syncnode held list`",
                    ])
                }
                if files.held + files.missing > 0 {
                    table.add([
                        "attached files",
                        "\(files.held) here (\(ByteText.describe(files.heldBytes)))"
                            + (files.missing > 0 ? ", \(files.missing) named by records here still to come (they follow at a sync)" : ""),
                    ])
                }
                if let mirror { table.add(["PostgreSQL mirror", Self.mirrorLine(mirror, holding: summary.vector.total)]) }
                table.add(["clock", "\(Presenter.localTime(summary.clock.millis)) \(Presenter.localZone), counter \(summary.clock.counter)"])
                emit(table.rows.map { "\($0[0]): \($0[1])" }.joined(separator: "\n"))
                if !peers.isEmpty { emit("\n" + Presenter.peersTable(peers)) }
                if !callers.isEmpty {
                    var nodes = TextTable(["registered node", "site", "last contact (\(Presenter.localZone))", "not yet here"])
                    for n in callers {
                        nodes.add([
                            n.entry.label + (n.entry.revokedAt == nil ? "" : " (revoked)"), n.entry.site,
                            n.contact.map { ReportFormat.localTime($0.heard) } ?? "never", n.notYetHere.map { String($0) } ?? "unknown",
                        ])
                    }
                    emit("\n" + nodes.render())
                }
            }
        }

        /// A time or count that may be unknown, for `--json`.
        static func number(_ value: UInt64?) -> Any { value.map { NSNumber(value: $0) } ?? NSNull() }

        /// HQ's registered nodes with their last contact, for `--json`.
        static func nodeObjects(_ callers: [NodeHealth]) -> [[String: Any]] {
            callers.map { n in
                [
                    "node": n.entry.node.hex, "label": n.entry.label, "site": n.entry.site, "revoked": n.entry.revokedAt != nil,
                    "lastHeard": number(n.contact?.heard), "lastReceived": number(n.lastReceived), "notYetHere": number(n.notYetHere),
                ] as [String: Any]
            }
        }

        /// Where the PostgreSQL mirror stands, for `--json`.
        static func mirrorObject(_ mirror: MirrorStatus?, holding: UInt64) -> Any {
            guard let m = mirror else { return NSNull() }
            return [
                "target": m.target, "mirrored": m.mirrored, "behind": holding > m.mirrored ? holding - m.mirrored : 0,
                "currentAt": number(m.currentAt), "failedAt": number(m.failedAt), "error": m.error ?? NSNull(),
            ] as [String: Any]
        }

        /// Where the PostgreSQL mirror stands, in a line.
        static func mirrorLine(_ mirror: MirrorStatus, holding: UInt64) -> String {
            let behind = holding > mirror.mirrored ? holding - mirror.mirrored : 0
            let since = mirror.currentAt.map { "; current at \(ReportFormat.localTime($0))" } ?? ""
            return "\(mirror.target): " + (behind == 0 ? "current" : "\(behind) transactions behind") + since
                + (mirror.error.map { "; last attempt failed: \($0)" } ?? "")
        }
    }
}
