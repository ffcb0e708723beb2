import ArgumentParser
import Foundation
import SyncNode
import SyncProtocol
import SyncWeb

extension SyncNodeCommand {
    struct Identity: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print this node's id, public key and fingerprint, and whom it trusts.")
        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Print only this, for scripts: id, public-key or fingerprint.") var print: Part?

        enum Part: String, ExpressibleByArgument, CaseIterable {
            case id
            case publicKey = "public-key"
            case fingerprint
        }

        func run() throws {
            let (info, entry) = try node.withStore { store in (store.info, try store.ownRegistryEntry()) }
            switch print {
            case .id: return emit(info.nodeID.hex)
            case .publicKey: return emit(info.publicKey.hex)
            case .fingerprint: return emit(info.publicKey.fingerprint)
            case nil: break
            }
            let approved =
                entry.map { $0.revokedAt == nil ? "approved as \($0.role.rawValue) for \($0.site)" : "revoked" }
                ?? "not yet approved (or HQ's registry has not arrived)"
            if output.json {
                var object: [String: Any] = [
                    "node": info.nodeID.hex, "label": info.label, "site": info.site, "role": info.role.rawValue, "publicKey": info.publicKey.hex,
                    "fingerprint": info.publicKey.fingerprint, "approved": entry != nil && entry?.revokedAt == nil,
                ]
                if let anchor = info.trustAnchor { object["trustAnchor"] = anchor.hex }
                emit(Presenter.json(object))
            } else {
                emit(
                    """
                    node: \(info.nodeID.hex)
                    label: \(info.label) (\(info.role.rawValue), site \(info.site))
                    public key: \(info.publicKey.hex)
                    fingerprint: \(info.publicKey.fingerprint)
                    trusts: \(info.trustAnchor.map { "HQ key \($0.fingerprint)" } ?? "nothing (open mode)")
                    registry: \(approved)
                    """)
            }
        }
    }

    struct Node: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The node registry: approve and revoke nodes (on HQ), list what the registry holds.",
            subcommands: [Approve.self, Revoke.self, List.self])
    }

    struct Rejections: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Transactions refused (this node's work refused elsewhere, and what this node refused), and those held.")
        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions
        @Flag(help: "List every refused transaction on a line of its own (by default: one line per node, refuser and reason).")
        var each = false

        func run() throws {
            let (refusals, held, labels, own, me) = try node.withStore { store in
                let refusals = try store.rejections()
                return (
                    refusals, try store.heldTransactions(), try store.nodeLabels(), Set(refusals.filter(store.isOwnWorkRefused)), store.info.nodeID
                )
            }
            if output.json {
                emit(
                    Presenter.json([
                        "refused": refusals.map { r in
                            ["origin": r.origin.hex, "seq": r.seq, "reason": r.reason, "refusedBy": r.refusedBy, "own": own.contains(r)]
                                as [String: Any]
                        },
                        "held": held.map { ["origin": $0.origin.hex, "seq": $0.seq] as [String: Any] },
                    ]))
                return
            }
            if refusals.isEmpty && held.isEmpty { note("nothing refused, nothing held") }
            func whose(_ origin: NodeID) -> String { origin == me ? "this node" : (labels[origin] ?? origin.short) }
            if !refusals.isEmpty {
                if each {
                    var table = TextTable(["transaction", "whose", "refused by", "reason"])
                    for r in refusals { table.add(["\(r.origin.short)/\(r.seq)", whose(r.origin), r.refusedBy, r.reason]) }
                    emit(table.render())
                } else {
                    // One line per origin, refuser and reason: thousands of refusals of one cause
                    // read as one line with their count and ranges of transaction numbers.
                    struct Cause: Hashable {
                        var origin: NodeID
                        var refusedBy: String
                        var reason: String
                    }
                    let groups = Dictionary(grouping: refusals) { Cause(origin: $0.origin, refusedBy: $0.refusedBy, reason: $0.reason) }
                    var table = TextTable(["whose", "node", "refused", "transactions", "refused by", "reason"])
                    for (cause, members) in groups.sorted(by: { ($0.value.count, $1.key.reason) > ($1.value.count, $0.key.reason) }) {
                        table.add([
                            whose(cause.origin), cause.origin.short, String(members.count), SeqRanges.text(members.map(\.seq)), cause.refusedBy,
                            cause.reason,
                        ])
                    }
                    emit(table.render())
                }
            }
            if !held.isEmpty {
                var table = TextTable([
                    "held until the registry approves their node", "node", "held", "transactions", "since (\(Presenter.localZone))",
                ])
                for (origin, members) in Dictionary(grouping: held, by: \.origin).sorted(by: { $0.value.count > $1.value.count }) {
                    table.add([
                        whose(origin), origin.short, String(members.count), SeqRanges.text(members.map(\.seq)),
                        Presenter.localTime(members.map(\.received).min() ?? 0),
                    ])
                }
                emit(table.render())
            }
            if !each && refusals.count > 1 { note("(--each lists every refused transaction; --json gives each with its reason)") }
        }
    }
}

/// Transaction numbers as ranges: 1–5, 9, 12–13 (at most `limit` ranges, then how many more).
enum SeqRanges {
    static func text(_ seqs: [UInt64], limit: Int = 6) -> String {
        var ranges: [(UInt64, UInt64)] = []
        for s in Set(seqs).sorted() {
            if let last = ranges.last, last.1 + 1 == s { ranges[ranges.count - 1].1 = s } else { ranges.append((s, s)) }
        }
        let shown = ranges.prefix(limit).map { $0.0 == $0.1 ? String($0.0) : "\($0.0)–\($0.1)" }
        return shown.joined(separator: ", ") + (ranges.count > limit ? " and \(ranges.count - limit) more ranges" : "")
    }
}

extension SyncNodeCommand.Node {
    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "(HQ) Enter a node in the registry with its key, site and role.")
        @OptionGroup var node: NodeOptions
        @Argument(help: "The node id printed by `init` on the new node.") var id: String
        @Option(help: "The node's public key, as printed by `init` or `identity` on it.") var key: String
        @Option(help: "The node's site.") var site: String
        @Option(help: "The node's role: hq, finance, office or county.") var role: Role
        @Option(help: "A label for the node.") var label: String?

        func validate() throws {
            guard NodeID(hex: id) != nil else { throw ValidationError("the node id is 32 hex digits, as printed by `syncnode init`") }
            guard PublicKeyText(hex: key) != nil else { throw ValidationError("--key is 64 hex digits, as printed by `syncnode init`") }
        }

        func run() throws {
            let nodeID = NodeID(hex: id)!
            let publicKey = PublicKeyText(hex: key)!
            let plan = try node.withStore { try $0.programme() }
            guard let planned = plan.sites.first(where: { $0.id == site }) else {
                throw failure(
                    .invalid("site '\(site)' is not in the plan; its sites: \(plan.sites.map(\.id).joined(separator: ", ")) (`syncnode plan show`)"))
            }
            if planned.role != role {
                note("note: the plan names \(site) a \(planned.role.rawValue) site; approving it as \(role.rawValue)")
            }
            try node.record([.approve(node: nodeID, key: publicKey, site: site, role: role, label: label ?? "\(site)-\(nodeID.short)")])
            note("approved \(nodeID.hex) (fingerprint \(publicKey.fingerprint)) as \(role.rawValue) for \(site)")
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "(HQ) Revoke a node: its transactions made from now on are refused everywhere.")
        @OptionGroup var node: NodeOptions
        @Argument(help: "The node id.") var id: String

        func validate() throws {
            guard NodeID(hex: id) != nil else { throw ValidationError("the node id is 32 hex digits") }
        }

        func run() throws {
            try node.record([.revoke(node: NodeID(hex: id)!)])
            note("revoked \(id)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the registry as this node holds it.")
        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            // One opening of the store for everything the listing shows.
            let (nodes, me, plan) = try node.withStore { store in (try store.nodeHealth(), store.info.nodeID, try store.programme()) }
            func number(_ value: UInt64?) -> Any { value.map { NSNumber(value: $0) } ?? NSNull() }
            if output.json {
                emit(
                    Presenter.json(
                        nodes.map { n in
                            let e = n.entry
                            return [
                                "node": e.node.hex, "label": e.label, "site": e.site, "role": e.role.rawValue, "publicKey": e.key.hex,
                                "fingerprint": e.key.fingerprint, "revoked": e.revokedAt != nil, "lastReceived": number(n.lastReceived),
                                "lastHeard": number(n.contact?.heard), "notYetHere": number(n.notYetHere),
                                "forkedAt": number(n.fork?.firstSeq),
                            ] as [String: Any]
                        }))
            } else {
                var table = TextTable([
                    "node", "label", "site", "role", "fingerprint", "state", "last work received (\(Presenter.localZone))",
                    "last contact (\(Presenter.localZone))", "not yet here",
                ])
                for n in nodes {
                    let e = n.entry
                    // This node itself is no node it waits to hear from.
                    let own = e.node == me
                    table.add([
                        e.node.short, e.label + (own ? " (this node)" : ""), e.site, e.role.rawValue, e.key.fingerprint,
                        (e.revokedAt == nil ? "active" : "revoked") + (n.fork.map { ", signed two histories from \($0.firstSeq) (see forks)" } ?? ""),
                        own ? "—" : n.lastReceived.map(ReportFormat.localTime) ?? "never",
                        own ? "—" : n.contact.map { ReportFormat.localTime($0.heard) } ?? "never",
                        own ? "—" : n.notYetHere.map { String($0) } ?? "unknown",
                    ])
                }
                emit(table.render())
                // A site of the plan with no node approved yet: said, not left out.
                let sites = Set(nodes.filter { $0.entry.revokedAt == nil }.map(\.entry.site))
                let missing = plan.sites.filter { !sites.contains($0.id) }
                if !missing.isEmpty {
                    emit("sites of the plan with no approved node yet: " + missing.map { "\($0.name) (\($0.id))" }.joined(separator: ", "))
                }
            }
        }
    }
}
