import Foundation
import SyncProtocol

/// The attached files' part of the sync API. Records travel first, in the signed log; a file
/// follows its attachment record, a part at a time, and is checked against its SHA-256 when the
/// last part is in. Both directions are asked by the node that syncs (a county behind its
/// county's network reaches HQ; HQ does not reach it): it sends what the peer says it lacks,
/// and fetches what it lacks itself.
extension SyncService {
    /// Most bytes of a file in one request or answer (4 s at 512 kbit/s; 32 s at 64 kbit/s, so a
    /// cut link loses little).
    public static let attachmentPartBytes = 256 * 1024

    /// `POST /v1/attachments/missing`: the files this node's records name and it lacks, the
    /// caller's own first (the caller is the one likely to hold them), with what is here of each.
    public func attachmentsMissing(caller: AuthenticatedCaller?) throws(APIError) -> [UInt8] {
        do {
            store.sweepAttachmentLeftovers()
            let missing = try store.missingAttachments(limit: 200, preferring: caller?.node)
            let files = missing.map { AttachmentsMissing.File(sha256: $0.sha256, bytes: $0.bytes, have: store.files.partialSize($0.sha256)) }
            return try WireCodec.encodeMessage(AttachmentsMissing(files: files))
        } catch let error as SyncNodeError {
            throw APIError(error)
        } catch {
            throw APIError(status: 500, code: "internal", message: "could not list the missing files")
        }
    }

    /// `POST /v1/attachments/fetch`: part of a file held here.
    public func attachmentFetch(body: [UInt8]) throws(APIError) -> [UInt8] {
        guard let request = try? WireCodec.decodeMessage(AttachmentFetch.self, from: body) else {
            throw .malformed("the fetch request is not valid JSON of the expected shape (sha256, offset, maxBytes)")
        }
        guard Attachment.isSHA256(request.sha256) else { throw .malformed("sha256 must be 64 lower-case hex digits") }
        guard request.offset >= 0, request.maxBytes > 0 else { throw .malformed("offset must be 0 or more and maxBytes positive") }
        guard store.files.size(request.sha256) != nil else {
            throw APIError(status: 404, code: "not_found", message: "file \(request.sha256.prefix(12)) is not held here")
        }
        do {
            return try store.files.read(request.sha256, offset: request.offset, maxBytes: min(request.maxBytes, Self.attachmentPartBytes))
        } catch {
            throw APIError(error)
        }
    }

    /// `POST /v1/attachments/upload`: part of a file this node's records name and it lacks.
    public func attachmentUpload(body: [UInt8], caller: AuthenticatedCaller? = nil) throws(APIError) -> [UInt8] {
        let part: AttachmentPart
        let chunk: [UInt8]
        do {
            let (header, frames) = try BatchCodec.decode(body)
            guard frames.count == 1 else { throw APIError.malformed("an upload carries one part of one file") }
            part = try WireCodec.decodeMessage(AttachmentPart.self, from: Array(header))
            chunk = Array(frames[0])
        } catch let error as APIError {
            throw error
        } catch {
            throw .malformed("the upload is not a part of a file (a header naming sha256 and offset, and one frame of bytes)")
        }
        guard Attachment.isSHA256(part.sha256) else { throw .malformed("sha256 must be 64 lower-case hex digits") }
        guard part.offset >= 0 else { throw .malformed("a part starts at 0 or later") }
        guard chunk.count <= Self.attachmentPartBytes else {
            throw APIError(
                status: 413, code: "body_too_large", message: "a part holds at most \(Self.attachmentPartBytes) bytes; this one holds \(chunk.count)")
        }
        do {
            guard let attachment = try store.acceptableAttachment(part.sha256, from: caller?.node) else {
                throw APIError(
                    status: 409, code: "not_named",
                    message: "no attachment record held here names file \(part.sha256.prefix(12)); push the records first, then the file")
            }
            let received = try store.files.receive(part.sha256, expectedBytes: attachment.bytes, offset: part.offset, chunk: chunk)
            let receipt: AttachmentReceipt
            switch received {
            case .partial(let have): receipt = AttachmentReceipt(sha256: part.sha256, have: have, complete: false, damaged: false)
            case .complete: receipt = AttachmentReceipt(sha256: part.sha256, have: attachment.bytes, complete: true, damaged: false)
            case .damaged: receipt = AttachmentReceipt(sha256: part.sha256, have: 0, complete: false, damaged: true)
            case .busy:
                throw APIError(
                    status: 503, code: "busy", message: "file \(part.sha256.prefix(12)) is being received by another request; retry shortly")
            }
            return try WireCodec.encodeMessage(receipt)
        } catch let error as APIError {
            throw error
        } catch let error as SyncNodeError {
            switch error.code {
            case .invalidInput: throw APIError(status: 413, code: "file_refused", message: error.message)
            case .diskFull: throw APIError(status: 507, code: "disk_full", message: error.message)
            default: throw APIError(error)
            }
        } catch {
            throw APIError(status: 500, code: "internal", message: "could not store the part")
        }
    }
}
