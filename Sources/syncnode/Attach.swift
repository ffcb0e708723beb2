import ArgumentParser
import Foundation
import SyncNode
import SyncProtocol

extension SyncNodeCommand {
    struct Attach: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Attach a photo or a PDF to a record as evidence; prints the file's SHA-256.",
            discussion:
                "The file is kept beside the node's database under its SHA-256 and named in a signed attachment record, which follows the record's policy (a county attaches only to its own records). Records travel first at a sync; the file follows, a part at a time, and is checked against its SHA-256 on arrival. JPEG, PNG, WebP, HEIC and PDF files are taken, up to 25 MiB each (SYNCNODE_ATTACHMENT_MAX_MB) and 2 GiB per node (SYNCNODE_ATTACHMENT_QUOTA_MB)."
        )
        @OptionGroup var node: NodeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The record's collection, such as projects.") var collection: String
        @Argument(help: "The record's id, such as lt-school-1.") var id: String
        @Argument(help: "The file: a photo (JPEG, PNG, WebP, HEIC) or a PDF.") var file: String
        @Option(help: "What the file shows.") var caption: String?
        @Option(help: ArgumentHelp("When the photo was taken (ISO 8601), if known.", valueName: "TIME")) var takenAt: String?
        @Option(help: ArgumentHelp("Where it was taken, if the person allowed it: LATITUDE,LONGITUDE.", valueName: "LAT,LON"))
        var location: String?

        func run() throws {
            var capture = CaptureDetails(takenAt: takenAt)
            if let location {
                let parts = location.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
                guard parts.count == 2, let latitude = parts[0], let longitude = parts[1] else {
                    throw failure(.invalid("--location takes LATITUDE,LONGITUDE in degrees, such as 34.69,103.35; got '\(location.prefix(60))'"))
                }
                capture.latitude = latitude
                capture.longitude = longitude
            }
            let url = URL(fileURLWithPath: file)
            let (attachment, transaction) = try node.withStore { store in
                try store.attach(collection: collection, recordID: id, file: url, caption: caption, capture: capture)
            }
            if output.json {
                emit(Presenter.json(AttachmentText.object(attachment, transaction: transaction.seq)))
            } else {
                emit(attachment.sha256)
                note(
                    "attached \(attachment.name ?? file) (\(ByteText.describe(attachment.bytes)), \(attachment.mediaType)) to \(collection)/\(id) as transaction \(transaction.seq)"
                )
            }
        }
    }

    struct AttachmentCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "attachment", abstract: "The files attached to records: list a record's, copy one out.",
            subcommands: [List.self, Get.self], defaultSubcommand: List.self)

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List a record's attached files: SHA-256, kind, size, who attached it and when, and whether the file is here yet.")
            @OptionGroup var node: NodeOptions
            @OptionGroup var output: OutputOptions
            @Argument(help: "The record's collection, such as projects.") var collection: String
            @Argument(help: "The record's id.") var id: String

            func run() throws {
                let list = try node.withStore { store in try store.attachments(of: collection, id) }
                if output.json {
                    emit(Presenter.json(list.map { AttachmentText.object($0, transaction: nil) }))
                    return
                }
                guard !list.isEmpty else {
                    note("no files are attached to \(collection)/\(id) here")
                    return
                }
                var table = TextTable(["sha256", "kind", "size", "name", "caption", "attached by", "attached at", "here"])
                for a in list {
                    table.add([
                        a.sha256, a.mediaType, ByteText.describe(a.bytes), a.name ?? "", a.caption ?? "", a.attachedBy ?? "", a.attachedAt ?? "",
                        a.held ? "yes" : "not yet (arrives with a sync)",
                    ])
                }
                emit(table.render())
            }
        }

        struct Get: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Copy an attached file out, checked against its SHA-256. Exit 3 when the file is not held here.")
            @OptionGroup var node: NodeOptions
            @Argument(help: "The file's SHA-256 (as `attachment list` shows it).") var sha256: String
            @Option(help: ArgumentHelp("Where to write the file.", valueName: "FILE")) var out: String

            func validate() throws {
                guard Attachment.isSHA256(sha256.lowercased()) else {
                    throw ValidationError("'\(sha256.prefix(80))' is not a SHA-256: 64 hex digits, as `syncnode attachment list` shows them")
                }
            }

            func run() throws {
                let sha = sha256.lowercased()
                try node.withStore { store in try store.files.copy(sha, to: URL(fileURLWithPath: out)) }
                note("wrote \(out)")
            }
        }
    }
}

/// An attached file as `--json` shows it.
enum AttachmentText {
    static func object(_ a: AttachmentInfo, transaction: UInt64?) -> [String: Any] {
        var object: [String: Any] = [
            "sha256": a.sha256, "collection": a.reference.collection, "id": a.reference.recordID, "bytes": a.bytes, "mediaType": a.mediaType,
            "held": a.held, "origin": a.origin.hex,
        ]
        let optional: [String: Any?] = [
            "name": a.name, "caption": a.caption, "attachedAt": a.attachedAt, "attachedBy": a.attachedBy, "takenAt": a.takenAt,
            "latitude": a.latitude, "longitude": a.longitude, "transaction": transaction,
        ]
        for (key, value) in optional { if let value { object[key] = value } }
        return object
    }
}
