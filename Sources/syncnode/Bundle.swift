import ArgumentParser
import Foundation
import SyncNode
import SyncProtocol

extension SyncNodeCommand {
    struct Bundle: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Carry transactions on a file where there is no network (a USB stick).",
            subcommands: [Export.self, Import.self])
    }
}

extension SyncNodeCommand.Bundle {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the transactions another node lacks to a bundle file, sealed for the nodes that may read it.",
            discussion: """
                Without --since the bundle holds every transaction this node has. Get the receiver's vector with `syncnode vector --json > FILE` on the receiving node.

                The bundle is encrypted so that only HQ and the nodes named with --to can open it (a county's bundle is for HQ unless --to names more; HQ's is for every node unless --to names some), and signed by this node so that an altered bundle is refused whole. --unsealed writes a bundle anyone can read, as versions before 0.14 did.
                """
        )

        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Where to write the bundle.") var out: String
        @Option(help: "A file holding the receiving node's version vector (from `syncnode vector --json`).") var since: String?
        @Option(
            help: ArgumentHelp(
                "A node that may open the bundle besides HQ: its label, site or id, or 'all' for every node (repeat for more).",
                valueName: "node")) var to: [String] = []
        @Flag(help: "Write a bundle anyone who finds the file can read (no encryption). Only for a receiver older than version 0.14.")
        var unsealed = false
        @Option(
            help: ArgumentHelp(
                "Most MiB of attached files the bundle carries (the files of its records; those past it travel by a sync or a later bundle).",
                valueName: "MiB")) var maxFilesMb = BundleFile.defaultMaxFileBytes >> 20

        func validate() throws {
            if unsealed && !to.isEmpty { throw ValidationError("--unsealed and --to do not go together: an unsealed bundle is for anyone") }
            if maxFilesMb < 0 || maxFilesMb > 2048 {
                throw ValidationError("--max-files-mb is a size in MiB from 0 (no files) to 2048 (the bundle is made in memory)")
            }
        }

        func run() throws {
            var vector = VersionVector()
            if let since {
                guard let data = FileManager.default.contents(atPath: since) else {
                    throw failure(.init(.invalidInput, "cannot read the vector file \(since)"))
                }
                do {
                    vector = try WireCodec.decodeMessage(VersionVector.self, from: [UInt8](data))
                } catch {
                    throw failure(
                        .init(
                            .invalidInput, "\(since) is not a version vector; make one with `syncnode vector --json > \(since)` on the receiving node"
                        ))
                }
            }
            let display = ProgressDisplay(enabled: !output.json)
            defer { display.finish() }
            let report = try node.withStore { store in
                var recipients: [BundleRecipient]?
                if !unsealed {
                    guard store.info.trustAnchor != nil else {
                        throw failure(
                            .init(
                                .invalidInput,
                                "this node was made without HQ's key (no trust anchor), so it knows no node's key to seal the bundle to; add --unsealed to write a bundle anyone can read"
                            ))
                    }
                    recipients = try store.bundleRecipients(named: to)
                }
                return try store.exportBundle(to: URL(fileURLWithPath: out), since: vector, sealedFor: recipients, maxFileBytes: maxFilesMb << 20) {
                    p in
                    display.update { _ in p.description }
                }
            }
            display.finish()
            if output.json {
                emit(
                    Presenter.json([
                        "transactions": report.transactions, "bytes": report.bytes, "file": out, "sealed": !unsealed, "sealedFor": report.sealedFor,
                        "files": report.files, "fileBytes": report.fileBytes, "filesLeftOut": report.filesLeftOut,
                    ]))
            } else {
                let sealing = unsealed ? "unsealed: anyone with the file can read it" : "sealed for \(report.sealedFor.joined(separator: ", "))"
                let files = report.files > 0 ? " and \(report.files) attached files (\(ByteText.describe(report.fileBytes)))" : ""
                note("wrote \(report.transactions) transactions\(files) (\(report.bytes) bytes) to \(out), \(sealing)")
                if report.filesLeftOut > 0 {
                    note(
                        "note: \(report.filesLeftOut) attached files of these records are not in the bundle (past --max-files-mb, or not held here); they travel by a sync or a later bundle"
                    )
                }
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a bundle file whole, then apply it. Importing the same bundle twice changes nothing.")

        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The bundle file.") var file: String

        func run() throws {
            let display = ProgressDisplay(enabled: !output.json)
            defer { display.finish() }
            let report = try node.withStore { store in
                try store.importBundle(from: URL(fileURLWithPath: file)) { p in
                    display.update { seconds in
                        var p = p
                        p.seconds = seconds
                        return p.description
                    }
                }
            }
            display.finish()
            let apply = report.apply ?? ApplyReport()
            let refused = apply.refused.filter { $0.permanent != false }
            let turnedAway = apply.refused.filter { $0.permanent == false }
            if output.json {
                emit(
                    Presenter.json([
                        "transactions": report.transactions, "applied": apply.applied, "alreadyHeld": apply.duplicates, "held": apply.held,
                        "refused": refused.map(Presenter.refusalObject), "turnedAway": turnedAway.map(Presenter.refusalObject),
                        "waiting": apply.waiting, "files": report.files, "fileBytes": report.fileBytes, "filesRefused": report.filesLeftOut,
                    ]))
            } else {
                note("applied \(apply.applied) of \(report.transactions) transactions (\(apply.duplicates) already held)")
                if report.files + report.filesLeftOut > 0 {
                    note(
                        "kept \(report.files) attached files (\(ByteText.describe(report.fileBytes)))\(report.filesLeftOut > 0 ? "; \(report.filesLeftOut) not kept (damaged, named by no record here, or past this node's limits)" : "")"
                    )
                }
                if apply.held > 0 {
                    note("warning: \(apply.held) transactions wait until HQ's approval of their node reaches this node (see `syncnode rejections`)")
                }
                for (what, list) in [("refused by this node's policy", refused), ("turned away (not signed by their origin)", turnedAway)]
                where !list.isEmpty {
                    note("warning: \(list.count) transactions \(what), first: \(list[0].reason)")
                }
                if apply.waiting > 0 {
                    note(
                        "warning: \(apply.waiting) transactions were not applied: an older node put an unsigned refusal in place of one of their origin's transactions; they arrive with that transaction from a node that holds it"
                    )
                }
            }
            // Not everything in the bundle is now applied or held here: scripts must notice.
            if !apply.refused.isEmpty || apply.waiting > 0 { throw ExitCode(80) }
        }
    }
}
