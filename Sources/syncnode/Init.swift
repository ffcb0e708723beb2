import ArgumentParser
import Foundation
import SyncNode
import SyncProtocol

extension SyncNodeCommand {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a new node (with its key pair) in the data directory and print its id.",
            discussion: """
                HQ: `syncnode init --site hq --role hq`. Every other node: `syncnode init --site lintan --role county --trust HQ_KEY`,
                with HQ's public key as printed by `syncnode identity` on HQ. Then an HQ operator approves the new node with
                `syncnode node approve NODE_ID --key KEY --site SITE --role ROLE`, using what `init` printed.
                """)

        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions

        @Option(help: "The site this node serves: hq, chengde, lintan, gangu, or a Dongli office.")
        var site: String

        @Option(help: "A human label for the node, such as lintan-office-1 (default: SITE-<id prefix>).")
        var label: String?

        @Option(help: "The node's role: hq, finance, office or county.")
        var role: Role

        @Option(help: "HQ's public key (64 hex digits) or a file holding it: the registry this node trusts. Not for --role hq.")
        var trust: String?

        @Option(help: "HQ only: the programme plan (JSON, docs/PROGRAMME.md) instead of the embedded 2017 plan.")
        var plan: String?

        func validate() throws {
            if role == .hq && trust != nil { throw ValidationError("an HQ node is its own trust anchor; drop --trust") }
            if role != .hq && plan != nil { throw ValidationError("only HQ installs a plan; other nodes receive it with their first sync") }
            if role != .hq && trust == nil {
                throw ValidationError("give --trust with HQ's public key (run `syncnode identity` on HQ), so this node knows whose registry to trust")
            }
        }

        func run() throws {
            var setup = TrustSetup.hq
            if let trust {
                let text = FileManager.default.contents(atPath: trust).map { String(decoding: $0, as: UTF8.self) } ?? trust
                guard let key = PublicKeyText(hex: text) else {
                    throw failure(
                        SyncNodeError(
                            .invalidInput, "--trust is neither 64 hex digits nor a file holding them; copy HQ's key from `syncnode identity`"))
                }
                setup = .anchor(key)
            }
            var planText = Programme.embeddedText
            if let plan {
                guard let data = FileManager.default.contents(atPath: plan) else {
                    throw failure(SyncNodeError(.invalidInput, "cannot read the plan file \(plan)"))
                }
                planText = data
            }
            do throws(SyncNodeError) {
                // A bad plan file is refused before anything is created.
                let programme = try Programme.decode(planText)
                if !programme.sites.contains(where: { $0.id == site }) {
                    throw SyncNodeError.invalid(
                        "site '\(site)' is not in the plan; its sites: \(programme.sites.map(\.id).joined(separator: ", "))")
                }
                let store = try Store.create(in: node.directory, site: site, label: label, role: role, trust: setup, clock: CLIClock.current)
                defer { try? store.close() }
                if role == .hq { try store.installPlan(planText) }
                let info = store.info
                if output.json {
                    emit(
                        Presenter.json([
                            "node": info.nodeID.hex, "site": info.site, "label": info.label, "role": info.role.rawValue,
                            "publicKey": info.publicKey.hex,
                            "fingerprint": info.publicKey.fingerprint,
                        ]))
                } else {
                    emit(info.nodeID.hex)
                    note("created node \(info.label) (\(info.role.rawValue)) for site \(info.site) in \(node.directory.path)")
                    note("public key: \(info.publicKey.hex)")
                    note("fingerprint: \(info.publicKey.fingerprint)")
                    if info.role != .hq {
                        note(
                            "ask HQ to approve it: syncnode node approve \(info.nodeID.hex) --key \(info.publicKey.hex) --site \(info.site) --role \(info.role.rawValue) --label \(info.label)"
                        )
                    }
                }
            } catch {
                throw failure(error)
            }
        }
    }
}

extension Role: ExpressibleByArgument {}
