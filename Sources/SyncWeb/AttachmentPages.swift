import Foundation
import HTTPTypes
import Hummingbird
import SyncNode
import SyncProtocol

/// A record's page with the photos and files attached to it as evidence (`Store+Attachments`),
/// the files themselves, and the phone's upload of a new one.
extension WebInterface {
    /// `/record/{collection}/{id}`: the record's current fields in the plan's words, and its files.
    func recordPage(_ session: WebSession, _ lang: Language, collection: String, id: String) throws -> (String, [String: Any])? {
        guard collection != Attachment.collection, let record = try store.record(collection, id), !record.deleted else { return nil }
        let plan = try store.programme()
        let kind = plan.kinds.first { $0.collection == collection }
        let planned = kind.map { plan.fields(of: $0) } ?? []
        var fields: [[String: Any]] = planned.compactMap { f in
            record.fields[f.storedName].map { value in
                let unit = f.type == .money ? (lang == .en ? " (10k yuan)" : " 万元") : ""
                return ["label": lang == .en ? f.name : (f.label ?? f.name), "text": Self.formText(f, value, plan) + unit]
            }
        }
        for (name, value) in record.fields.sorted(by: { $0.key < $1.key }) where !planned.contains(where: { $0.storedName == name }) {
            fields.append(["label": name, "text": value.description])
        }
        let nodes = try store.nodeLabels()
        let files = try store.attachments(of: collection, id).map { a -> [String: Any] in
            let type = Attachment.MediaType(rawValue: a.mediaType)
            var file: [String: Any] = [
                // Shown where browsers draw it (HEIC, an iPhone's format, most do not: it is a download).
                "sha": a.sha256, "held": a.held, "image": a.held && [.jpeg, .png, .webp].contains(type), "name": a.name ?? "",
                "caption": a.caption ?? "",
                "by": a.attachedBy ?? "", "node": nodes[a.origin] ?? a.origin.short, "at": Self.attachedTime(a.attachedAt),
                "size": ByteText.describe(a.bytes), "kindWord": lang.labels[type?.isImage == false ? "kind.pdf" : "kind.photo"] ?? "",
            ]
            if let latitude = a.latitude, let longitude = a.longitude { file["place"] = String(format: "%.5f, %.5f", latitude, longitude) }
            return file
        }
        let policyAllows = try store.mayAttach(collection: collection, recordID: id)
        let mayAttach = session.user.role.mayWrite && policyAllows
        return (
            "record",
            [
                "title": "\(kind?.name ?? collection) \(id)", "kindName": kind?.name ?? collection, "collection": collection, "recordID": id,
                "fields": fields, "files": files, "mayAttach": mayAttach, "attachPath": Self.recordPath("/attach/", collection, id),
            ]
        )
    }

    /// A path segment as the record's id or collection it names (a record id may hold any letter).
    static func pathParameter(_ context: WebRequestContext, _ name: String) -> String {
        let raw = context.parameters.get(name) ?? ""
        return raw.removingPercentEncoding ?? raw
    }

    /// A record's path, each part percent-encoded.
    static func recordPath(_ prefix: String, _ collection: String, _ id: String) -> String {
        let safe = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        return prefix + [collection, id].map { $0.addingPercentEncoding(withAllowedCharacters: safe) ?? "" }.joined(separator: "/")
    }

    /// An attachment's time as people read it (the node's local time).
    static func attachedTime(_ iso: String?) -> String {
        guard let iso, let date = ISO8601DateFormatter().date(from: iso) else { return iso ?? "" }
        return ReportFormat.localTime(UInt64(max(0, date.timeIntervalSince1970 * 1000)))
    }

    /// `/file/{sha256}`: a held file, its kind read from its own first bytes (never from what the
    /// attaching node wrote); a picture shown, anything else downloaded, and nothing in it may run.
    func file(_ request: Request, sha256: String) async throws -> Response {
        let store = store
        guard Attachment.isSHA256(sha256), let size = store.files.size(sha256) else { return notFound(request) }
        let bytes = try await BlockingWork.run { try store.files.read(sha256, offset: 0, maxBytes: size) }
        let type = Attachment.MediaType(leadingBytes: Array(bytes.prefix(16)))
        var headers: HTTPFields = [
            .contentType: type?.rawValue ?? "application/octet-stream", .cacheControl: "private, max-age=31536000, immutable",
            .contentSecurityPolicy: "default-src 'none'; img-src 'self'; sandbox", HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        ]
        if ![.jpeg, .png, .webp].contains(type) {
            let ending =
                switch type {
                case .pdf?: "pdf"
                case .heic?: "heic"
                default: "bin"
                }
            headers[.contentDisposition] = "attachment; filename=\"\(sha256.prefix(12)).\(ending)\""
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// `POST /attach/{collection}/{id}`: a file from the record's page (its bytes as the body, the
    /// caption and name in the query), attached as `syncnode attach` does, by the signed-in user.
    /// Answers JSON with a message in the visitor's language.
    func attach(_ request: Request, _ context: WebRequestContext, collection: String, id: String) async throws -> Response {
        let visitor = context.visitor
        let labels = visitor.language.labels
        guard let session = context.identity, session.user.role.mayWrite else { return Self.answer(.forbidden, labels["forbidden"] ?? "") }
        guard sameOrigin(request), let token = request.headers[HTTPField.Name("X-Form-Token")!], Self.constantTimeEqual(token, session.csrf) else {
            return Self.answer(.forbidden, labels["staleForm"] ?? "")
        }
        let store = store
        let limit = store.limits.maxAttachmentBytes
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit + 1)
        } catch {
            return Self.answer(.contentTooLarge, labels["tooLarge"] ?? "")
        }
        let query = request.uri.queryParameters
        let caption = query.get("caption").map { String($0.prefix(500)) }
        let name = query.get("name").map { String($0.prefix(200)) }.flatMap { $0.isEmpty ? nil : $0 }
        let user = session.user.name
        let temporary = store.files.directory.appendingPathComponent("partial").appendingPathComponent("upload-\(UUID().uuidString)")
        do {
            let seq = try await BlockingWork.run { () throws -> UInt64 in
                try FileManager.default.createDirectory(at: temporary.deletingLastPathComponent(), withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: temporary) }
                try Data(body.readableBytesView).write(to: temporary)
                return try Store.$author.withValue(user) {
                    try store.attach(collection: collection, recordID: id, file: temporary, name: name ?? "photo", caption: caption).1.seq
                }
            }
            return Self.answer(.ok, (labels["attached"] ?? "").replacingOccurrences(of: "{n}", with: String(seq)))
        } catch let error as SyncNodeError {
            let status: HTTPResponse.Status =
                switch error.code {
                case .forbidden: .forbidden
                case .notFound: .notFound
                case .diskFull, .storage, .readOnly, .databaseCorrupt: .internalServerError
                default: .unprocessableContent
                }
            let zh = error.code == .forbidden ? labels["attachForbidden"] : error.problems.first?.zh
            // The node's own failures have no Chinese of their own: the page says what to do.
            return Self.answer(status, visitor.language == .zh ? zh ?? labels["attachFailed"] ?? "" : error.message)
        }
    }

    private static func answer(_ status: HTTPResponse.Status, _ message: String) -> Response {
        let body = (try? JSONSerialization.data(withJSONObject: ["message": message])) ?? Data()
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
