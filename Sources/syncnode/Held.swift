import ArgumentParser
import Foundation
import SyncNode
import SyncProtocol
import SyncWeb

extension SyncNodeCommand {
    struct Held: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Work held until HQ's approval of its node arrives: list it per sender, drop a sender's or a node's.",
            discussion:
                "A transaction of a node the registry does not know yet is held, counted against the share of the node that pushed it (pulls and bundles share one), and dropped 14 days after it arrived; its sender offers it again.",
            subcommands: [List.self, Drop.self], defaultSubcommand: List.self)

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List the held work per sender and origin: transactions, bytes, when the first and the last arrived.")
            @OptionGroup var node: NodeOptions
            @OptionGroup var output: OutputOptions

            func run() throws {
                let (work, labels, limits) = try node.withStore { store in (try store.heldWork(), try store.nodeLabels(), store.limits) }
                if output.json {
                    emit(Presenter.json(work.map { HeldText.object($0, labels: labels, limits: limits) }))
                    return
                }
                guard !work.isEmpty else {
                    note("nothing held")
                    return
                }
                emit(HeldText.table(work, labels: labels).render())
                var senders = TextTable(["sender", "transactions", "bytes", "share of bytes", "origins"])
                for (sender, groups) in Dictionary(grouping: work, by: \.sender).sorted(by: { HeldText.order($0.key, $1.key, labels: labels) }) {
                    let bytes = groups.map(\.bytes).reduce(0, +)
                    senders.add([
                        HeldText.name(sender, labels: labels), String(groups.map(\.transactions).reduce(0, +)), ByteText.describe(bytes),
                        "\(bytes * 100 / max(1, limits.maxHeldBytesPerSender))% of \(ByteText.describe(limits.maxHeldBytesPerSender))",
                        "\(Set(groups.map(\.origin)).count) of \(limits.maxHeldOriginsPerSender)",
                    ])
                }
                emit("\n" + senders.render())
                let first = work.map(\.oldest).min() ?? 0
                note(
                    "held work is dropped \(DurationText.describe(millis: limits.maxHeldAgeMillis)) after it arrived (the first on \(Presenter.localTime(first + limits.maxHeldAgeMillis)) \(Presenter.localZone)), and its sender offers it again; `syncnode held drop --sender NODE` drops a sender's now"
                )
            }
        }

        struct Drop: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Drop held work: a sender's, a node's, what came by pulls and bundles, or all of it. Prints what was dropped.",
                discussion:
                    "NODE is a node id, its first 8 or more hex digits (as `held list` shows them) or a label in the registry. With --sender and --origin together, that sender's work of that node. The later held transactions of a node whose work is dropped go too (they cannot be applied without it). Nothing is lost: its sender offers it again at its next push (a pull asks for it again), and it is applied once HQ's approval of its node has arrived."
            )
            @OptionGroup var node: NodeOptions
            @OptionGroup var output: OutputOptions
            @Option(help: ArgumentHelp("The node that pushed the work.", valueName: "NODE")) var sender: String?
            @Option(help: ArgumentHelp("The node whose work it is.", valueName: "NODE")) var origin: String?
            @Flag(help: "The work that came by pulls and bundles (no node pushed it).") var pulled = false
            @Flag(help: "All held work.") var all = false

            func validate() throws {
                if all {
                    guard sender == nil, origin == nil, !pulled else { throw ValidationError("--all drops all held work; give it alone") }
                } else if sender == nil && origin == nil && !pulled {
                    throw ValidationError(
                        "say what to drop: --sender NODE, --origin NODE, --pulled or --all (`syncnode held list` shows what is held)")
                }
                if pulled && sender != nil { throw ValidationError("--pulled is the work no node pushed; give --sender or --pulled, not both") }
            }

            func run() throws {
                let (dropped, labels) = try node.withStore { store in
                    let held = try store.heldWork()
                    let registry = try store.registry()
                    var from: HeldSender?
                    if pulled { from = .pulled }
                    if let sender {
                        from = .node(try HeldText.resolve(sender, registry: registry, held: held, me: store.info, what: "--sender"))
                    }
                    let of = try origin.map { try HeldText.resolve($0, registry: registry, held: held, me: store.info, what: "--origin") }
                    return (try store.dropHeldWork(sender: from, origin: of), try store.nodeLabels())
                }
                if output.json {
                    emit(Presenter.json(dropped.map { HeldText.object($0, labels: labels, limits: nil) }))
                    return
                }
                if dropped.isEmpty {
                    note("nothing held matches; nothing was dropped")
                    return
                }
                for d in dropped {
                    emit(
                        "dropped \(d.transactions) transaction\(d.transactions == 1 ? "" : "s") (\(HeldText.numbers(d)), \(ByteText.describe(d.bytes))) of \(labels[d.origin] ?? d.origin.short), from \(HeldText.name(d.sender, labels: labels))"
                    )
                }
            }
        }
    }
}

/// How held work is shown and how a node is named on the command line.
enum HeldText {
    static func name(_ sender: HeldSender, labels: [NodeID: String]) -> String {
        switch sender {
        case .pulled: "pulls and bundles"
        case .node(let node): labels[node] ?? node.short
        }
    }

    /// Pushing senders by label (then id), then pulls and bundles.
    static func order(_ a: HeldSender, _ b: HeldSender, labels: [NodeID: String]) -> Bool {
        switch (a, b) {
        case (.node(let x), .node(let y)): (labels[x] ?? "", x.hex) < (labels[y] ?? "", y.hex)
        case (.node, .pulled): true
        default: false
        }
    }

    static func numbers(_ w: HeldWork) -> String {
        w.firstSeq == w.lastSeq ? "number \(w.firstSeq)" : "numbers \(w.firstSeq)–\(w.lastSeq)"
    }

    static func table(_ work: [HeldWork], labels: [NodeID: String]) -> TextTable {
        var table = TextTable([
            "sender", "origin", "transactions", "numbers", "bytes", "first arrived (\(Presenter.localZone))", "last arrived (\(Presenter.localZone))",
        ])
        for w in work.sorted(by: { order($0.sender, $1.sender, labels: labels) || ($0.sender == $1.sender && $0.bytes > $1.bytes) }) {
            table.add([
                name(w.sender, labels: labels), labels[w.origin] ?? w.origin.short, String(w.transactions),
                w.firstSeq == w.lastSeq ? String(w.firstSeq) : "\(w.firstSeq)–\(w.lastSeq)", ByteText.describe(w.bytes),
                Presenter.localTime(w.oldest), Presenter.localTime(w.newest),
            ])
        }
        return table
    }

    /// One group as JSON; `expires` (when the age limit drops it) when `limits` is given.
    static func object(_ w: HeldWork, labels: [NodeID: String], limits: StoreLimits?) -> [String: Any] {
        var sender: Any = NSNull()
        var senderLabel: Any = NSNull()
        if case .node(let node) = w.sender {
            sender = node.hex
            senderLabel = labels[node] ?? NSNull()
        }
        var object: [String: Any] = [
            "sender": sender, "senderLabel": senderLabel, "origin": w.origin.hex, "originLabel": labels[w.origin] ?? NSNull(),
            "transactions": w.transactions, "bytes": w.bytes, "firstSeq": w.firstSeq, "lastSeq": w.lastSeq, "oldest": w.oldest, "newest": w.newest,
        ]
        if let limits { object["expires"] = w.oldest + limits.maxHeldAgeMillis }
        return object
    }

    /// The node `text` names: its id, the first 8 or more digits of it, or its label in the
    /// registry; among the registry, this node and the senders and origins of held work. Exit 3
    /// when it names none of them, 65 when it names several.
    static func resolve(_ text: String, registry: [RegistryEntry], held: [HeldWork], me: NodeInfo, what: String) throws(SyncNodeError) -> NodeID {
        var known = Set(registry.map(\.node))
        known.insert(me.nodeID)
        for w in held {
            known.insert(w.origin)
            if case .node(let node) = w.sender { known.insert(node) }
        }
        var matches: Set<NodeID>
        if let id = NodeID(hex: text) {
            matches = known.contains(id) ? [id] : []
        } else {
            matches = Set(registry.filter { $0.label == text }.map(\.node))
            if me.label == text { matches.insert(me.nodeID) }
            let digits = text.lowercased()
            if matches.isEmpty, digits.count >= 8, digits.allSatisfy(\.isHexDigit) {
                matches = known.filter { $0.hex.hasPrefix(digits) }
            }
        }
        if matches.count > 1 {
            throw .invalid(
                "\(what) \(text) names \(matches.count) nodes (\(matches.map(\.hex).sorted().joined(separator: ", "))); give the whole node id")
        }
        guard let node = matches.first else {
            throw SyncNodeError(
                .notFound,
                "\(what) \(text) names no node known here (neither in the registry nor among the held work); `syncnode held list` shows the senders and origins of held work, `syncnode node list` the registry; nothing was dropped"
            )
        }
        return node
    }
}
