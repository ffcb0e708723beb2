import ArgumentParser
import Foundation
import SyncNode

extension SyncNodeCommand {
    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run one sync round with each peer (the given ones, else the remembered ones).",
            discussion: "Exits 0 only if every peer synced; otherwise with the code of the first failure (69 unreachable, 78 refused, 77 clock skew)."
        )

        @OptionGroup var node: NodeOptions
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions
        @Option(name: .customLong("peer"), help: "A peer's base URL, such as http://hq:8420. Repeatable.") var peers: [String] = []
        @Option(help: "Most transactions per batch.") var batchTransactions = 500

        func validate() throws {
            guard batchTransactions > 0 else { throw ValidationError("--batch-transactions must be positive") }
        }

        /// One peer's round as `--json` gives it.
        static func object(_ summary: SyncSummary, url: String) -> [String: Any] {
            return [
                "peer": url, "ok": true, "label": summary.peer.label, "received": summary.received, "sent": summary.sent,
                "bytes": summary.wireBytes, "seconds": summary.seconds, "refused": summary.refused, "refusedHere": summary.refusedHere,
                "turnedAway": summary.turnedAway, "recovered": summary.recovery?.adopted ?? 0, "reissued": summary.recovery?.reissued ?? 0,
                "pullSkipped": summary.pullSkipped,
                "files": summary.attachments.map { a -> [String: Any] in
                    var files: [String: Any] = [
                        "sent": a.sent, "received": a.received, "damaged": a.damaged, "refused": a.refused, "bytes": a.bytes, "waiting": a.waiting,
                    ]
                    if let stopped = a.stopped { files["stopped"] = stopped }
                    return files
                } ?? [:],
            ]
        }

        /// What one peer's round did, on stderr.
        static func say(_ summary: SyncSummary, url: String) {

            if let recovery = summary.recovery {
                note(
                    "warning: this node had lost part of its own history (restored from an older copy?): took back \(recovery.adopted) of its transactions from \(summary.peer.label) and recorded \(recovery.reissued) others again after them; nothing was lost"
                )
            }
            if summary.pullSkipped {
                note("warning: this node's disk is full: its own work was sent, but nothing was received; free space and sync again")
            }
            if summary.refusedHere + summary.turnedAway > 0 {
                note(
                    "warning: of what \(summary.peer.label) sent, this node refused \(summary.refusedHere) transactions and turned away \(summary.turnedAway) bad copies; see `syncnode rejections`"
                )
            }
            if summary.heldByPeer > 0 {
                note("warning: \(summary.peer.label) holds \(summary.heldByPeer) transactions until HQ's approval of this node reaches it")
            }
            if summary.refused > 0 {
                note("warning: \(summary.peer.label) refused \(summary.refused) of this node's transactions; see `syncnode rejections`")
            }
            if let files = summary.attachments,
                files.sent + files.received + files.damaged + files.refused + files.waiting > 0 || files.stopped != nil
            {
                var line =
                    "\(url) (\(summary.peer.label)): attached files: sent \(files.sent), received \(files.received), \(ByteText.describe(files.bytes)) moved"
                if files.damaged > 0 { line += "; \(files.damaged) damaged on the way or on a disk, thrown away (tried again next time)" }
                if files.refused > 0 { line += "; \(files.refused) not taken by the peer (its limits or its disk; see its log)" }
                if files.waiting > 0 { line += "; \(files.waiting) still to come" }
                if let stopped = files.stopped { line += "; stopped: \(stopped)" }
                note(line)
            }
            note(
                "\(url) (\(summary.peer.label)): received \(summary.received) transactions, sent \(summary.sent), \(summary.wireBytes) bytes on the wire, \(String(format: "%.2f", summary.seconds)) s"
            )
        }

        func run() async throws {
            Syncer.configureForOneShotProcess()
            let store: Store
            var targets = peers
            do {
                store = try Store.open(node.directory, clock: CLIClock.current)
                if targets.isEmpty { targets = try store.peers().map(\.url) }
            } catch {
                throw failure(error)
            }
            defer { try? store.close() }
            guard !targets.isEmpty else {
                note("error: no peer to sync with; pass --peer URL or remember one with `syncnode peer add URL`")
                throw ExitCode(64)
            }
            var limits = SyncLimits()
            limits.maxTransactions = batchTransactions
            var firstFailure: SyncNodeError?
            var results: [[String: Any]] = []
            for url in targets {
                let syncer = Syncer(
                    store: store, transport: HTTPTransport(baseURL: url, client: client.curl, signer: store.requestSigner), limits: limits)
                let display = ProgressDisplay(enabled: !output.json)
                defer { display.finish() }
                do {
                    let summary = try await syncer.run(bookkeepingKey: url) { p in
                        display.update { seconds in
                            var p = p
                            p.seconds = seconds
                            return "\(url): \(p.description)"
                        }
                    }
                    display.finish()
                    results.append(Self.object(summary, url: url))
                    if !output.json { Self.say(summary, url: url) }
                } catch {
                    display.finish()
                    firstFailure = firstFailure ?? error
                    results.append(["peer": url, "ok": false, "error": explained(error), "code": error.code.rawValue])
                    if !output.json { note("error: \(explained(error))") }
                }
            }
            if output.json { emit(Presenter.json(results)) }
            if let firstFailure { throw ExitCode(firstFailure.exitCode) }
        }
    }

    struct Peer: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remember, list and forget the peers `serve` and `sync` use.", subcommands: [Add.self, List.self, Remove.self])
    }
}

extension SyncNodeCommand.Peer {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remember a peer URL.")
        @OptionGroup var node: NodeOptions
        @Argument(help: "The peer's base URL, such as http://hq:8420.") var url: String

        func run() throws {
            try node.withStore { store in try store.addPeer(url) }
            note("remembered \(url)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List remembered peers and how their last sync went.")
        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let rows = try node.withStore { store in try store.peers().map { ($0, try store.unsentCount(to: $0)) } }
            emit(output.json ? Presenter.json(rows.map { Presenter.peerObject($0.0, unsent: $0.1) }) : Presenter.peersTable(rows))
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Forget a peer.")
        @OptionGroup var node: NodeOptions
        @Argument var url: String

        func run() throws {
            try node.withStore { store in try store.removePeer(url) }
            note("forgot \(url)")
        }
    }
}
