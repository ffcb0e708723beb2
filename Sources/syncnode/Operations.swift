import ArgumentParser
import Foundation
import SyncNode
import SyncProtocol

extension SyncNodeCommand {
    struct Backup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a consistent copy of the node (database and key, compressed, checksummed) while it keeps serving.",
            discussion:
                "The file holds the node's private key: keep it like the key itself. Restore with `syncnode restore FILE --data DIR`. Attached files are not in it: they never change once written, so copy DATA/attachments/ with any file backup (rsync); a restored node fetches from its peers every file its records name and it lacks."
        )
        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "The backup file to write.") var out: String

        func run() throws {
            let (report, files) = try node.withStore { store in (try store.backup(to: URL(fileURLWithPath: out)), try store.attachmentSummary()) }
            if output.json {
                emit(
                    Presenter.json([
                        "file": report.file, "bytes": report.bytes, "transactions": report.transactions, "sha256": report.sha256,
                        "attachedFilesNotIncluded": files.held,
                    ]))
            } else {
                emit(report.file)
                note("backed up \(report.transactions) transactions, \(report.bytes) bytes, sha256 \(report.sha256)")
                if files.held > 0 {
                    note(
                        "note: the \(files.held) attached files (\(ByteText.describe(files.heldBytes))) are not in the backup; copy \(node.directory.path)/attachments/ as well (a restored node fetches from its peers the files they hold)"
                    )
                }
            }
        }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a node in an empty --data directory from a backup file (never over a live node).",
            discussion: """
                Then sync with a peer before recording new work: the node takes back from its peers what it recorded after
                the backup (its own later transactions), and records again anything that clashes with them.
                """)
        @OptionGroup var node: NodeOptions
        @Argument(help: "The backup file.") var file: String

        func run() throws {
            let info = try withFailure { () throws(SyncNodeError) in try Store.restore(from: URL(fileURLWithPath: file), into: node.directory) }
            emit(info.nodeID.hex)
            note("restored node \(info.label) (\(info.role.rawValue), \(info.site)) into \(node.directory.path)")
            note("sync with a peer now, before recording work, so the node takes back what it recorded after the backup")
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the node's storage: SQLite integrity, the log against the vector, every transaction's signature.",
            discussion: "Exit 0 when healthy; 74 when damaged (restore from a backup, or re-create the node and sync).")
        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let r = try node.withStore { try $0.check() }
            if output.json {
                emit(
                    Presenter.json([
                        "healthy": r.isHealthy, "integrity": r.integrity, "vectorMismatches": r.vectorMismatches,
                        "transactions": r.transactionsChecked,
                        "badSignatures": r.badSignatures, "unsigned": r.unsigned, "unknownKeys": r.unknownKeys,
                        "widePermissions": r.widePermissions, "chainMismatches": r.chainMismatches,
                        "forkedNodes": r.forks.map(\.origin.hex),
                    ]))
            } else {
                emit(
                    "checked \(r.transactionsChecked) transactions: \(r.badSignatures.count) bad signatures, \(r.unsigned) unsigned (vouched or open), \(r.unknownKeys) of unknown keys; integrity \(r.integrity.isEmpty ? "ok" : "DAMAGED"); log and vector \(r.vectorMismatches.isEmpty ? "agree" : "DISAGREE")"
                )
                for line in r.integrity.prefix(20) + r.vectorMismatches.prefix(20) + r.badSignatures.prefix(20) + r.chainMismatches.prefix(20) {
                    note(line)
                }
                for fork in r.forks {
                    note(
                        "warning: node \(fork.origin.short) signed two histories from its transaction \(fork.firstSeq) on (a forged fork, or one identity on two machines); see `syncnode forks`"
                    )
                }
                // Readable by others: reported (the store made what it could owner-only as it opened).
                for line in r.widePermissions { note("warning: \(line)") }
            }
            if !r.isHealthy { throw ExitCode(74) }
        }
    }
}
