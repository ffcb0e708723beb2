import Foundation
import SyncProtocol

/// A pulled batch as received.
public struct PulledBatch: Sendable {
    public var header: BatchHeader
    public var transactions: [ReceivedTransaction]
    public var wireBytes: Int
    /// What a vouch in the header must sign (set only when the header carries one).
    var vouchPayload: [UInt8]?
    /// The node whose signature the answer carried (`AnswerCheck`); nil where answers are not
    /// authenticated (open mode, in-process transports).
    public var answeredBy: NodeID?
}

/// How a sync round reaches its peer: over HTTP in production, in process in tests.
public protocol SyncTransport: Sendable {
    /// A name for messages: the URL or the peer's label.
    var peerName: String { get }
    func status() async throws(SyncNodeError) -> (StatusMessage, wireBytes: Int)
    func pull(_ request: PullRequest) async throws(SyncNodeError) -> PulledBatch
    func push(_ batch: [UInt8]) async throws(SyncNodeError) -> (PushResponse, wireBytes: Int)
    /// The attached files the peer's records name and it lacks (`AttachmentTransfer`).
    func attachmentsMissing() async throws(SyncNodeError) -> AttachmentsMissing
    /// Part of a file the peer holds.
    func fetchAttachment(_ request: AttachmentFetch) async throws(SyncNodeError) -> [UInt8]
    /// Sends part of a file the peer lacks.
    func uploadAttachment(_ part: AttachmentPart, bytes: [UInt8]) async throws(SyncNodeError) -> AttachmentReceipt
}

extension SyncTransport {
    /// Decodes a pull response; a header's vouch is checked later, against the frames as received.
    public static func decodeBatch(_ body: [UInt8], from peer: String, wireBytes: Int) throws(SyncNodeError) -> PulledBatch {
        do {
            let (header, frames) = try BatchCodec.read(body)
            var transactions: [ReceivedTransaction] = []
            for frame in frames { transactions.append(try ReceivedTransaction(frame: frame)) }
            return PulledBatch(
                header: header, transactions: transactions, wireBytes: wireBytes,
                vouchPayload: header.vouch == nil ? nil : SigningPayload.vouch(frames, refused: header.refusedFrames ?? []))
        } catch {
            throw SyncNodeError(.protocolViolation, "\(peer) sent a malformed batch: \(error)")
        }
    }
}

extension SyncTransport {
    /// A transport that carries no files (a test's stand-in for a peer): the peer lacks nothing.
    public func attachmentsMissing() async throws(SyncNodeError) -> AttachmentsMissing { AttachmentsMissing(files: []) }
    public func fetchAttachment(_ request: AttachmentFetch) async throws(SyncNodeError) -> [UInt8] {
        throw SyncNodeError(.notFound, "\(peerName) does not carry attached files")
    }
    public func uploadAttachment(_ part: AttachmentPart, bytes: [UInt8]) async throws(SyncNodeError) -> AttachmentReceipt {
        throw SyncNodeError(.peerRefused, "\(peerName) does not carry attached files")
    }

    /// The frame of an upload: the part's header and its bytes.
    static func uploadBody(_ part: AttachmentPart, bytes: [UInt8]) throws(SyncNodeError) -> [UInt8] {
        do {
            return BatchCodec.encode(header: try WireCodec.encodeMessage(part), frames: [bytes])
        } catch {
            throw SyncNodeError(.invalidInput, "cannot encode an upload")
        }
    }
}

/// Talks to another store's `SyncService` in the same process, through the same byte-level
/// handlers as HTTP. For tests and simulations.
public struct LocalTransport: SyncTransport {
    public let service: SyncService

    public init(service: SyncService) { self.service = service }

    public var peerName: String { service.store.info.label }

    public func status() async throws(SyncNodeError) -> (StatusMessage, wireBytes: Int) {
        do {
            return (try service.status(), 0)
        } catch {
            throw SyncNodeError(.peerRefused, "\(peerName) refused: \(error.message) (\(error.code))")
        }
    }

    public func pull(_ request: PullRequest) async throws(SyncNodeError) -> PulledBatch {
        do {
            let body = try service.pull(body: try WireCodec.encodeMessage(request))
            return try Self.decodeBatch(body, from: peerName, wireBytes: body.count)
        } catch let error as APIError {
            throw SyncNodeError(.peerRefused, "\(peerName) refused: \(error.message) (\(error.code))")
        } catch let error as SyncNodeError {
            throw error
        } catch {
            throw SyncNodeError(.protocolViolation, "\(error)")
        }
    }

    public func attachmentsMissing() async throws(SyncNodeError) -> AttachmentsMissing {
        try decoded(AttachmentsMissing.self, try local { () throws(APIError) in try service.attachmentsMissing(caller: nil) })
    }

    public func fetchAttachment(_ request: AttachmentFetch) async throws(SyncNodeError) -> [UInt8] {
        guard let body = try? WireCodec.encodeMessage(request) else { throw SyncNodeError(.invalidInput, "cannot encode the fetch request") }
        return try local { () throws(APIError) in try service.attachmentFetch(body: body) }
    }

    public func uploadAttachment(_ part: AttachmentPart, bytes: [UInt8]) async throws(SyncNodeError) -> AttachmentReceipt {
        let body = try Self.uploadBody(part, bytes: bytes)
        return try decoded(AttachmentReceipt.self, try local { () throws(APIError) in try service.attachmentUpload(body: body) })
    }

    /// Runs a service call, its refusal said as a peer's.
    private func local(_ call: () throws(APIError) -> [UInt8]) throws(SyncNodeError) -> [UInt8] {
        do {
            return try call()
        } catch {
            throw SyncNodeError(error.status == 404 ? .notFound : .peerRefused, "\(peerName) refused: \(error.message) (\(error.code))")
        }
    }

    private func decoded<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws(SyncNodeError) -> T {
        guard let value = try? WireCodec.decodeMessage(type, from: bytes) else {
            throw SyncNodeError(.protocolViolation, "\(peerName) sent an answer this node cannot read")
        }
        return value
    }

    public func push(_ batch: [UInt8]) async throws(SyncNodeError) -> (PushResponse, wireBytes: Int) {
        do {
            let body = try service.push(body: batch)
            return (try WireCodec.decodeMessage(PushResponse.self, from: body), batch.count)
        } catch let error as APIError {
            throw SyncNodeError(.peerRefused, "\(peerName) refused: \(error.message) (\(error.code))")
        } catch {
            throw SyncNodeError(.protocolViolation, "\(peerName) sent a malformed push answer")
        }
    }
}

/// Talks to a peer's HTTP API through libcurl.
public struct HTTPTransport: SyncTransport {
    public let baseURL: String
    public let client: CurlClient
    /// Signs each request with this node's key; nil sends unsigned requests (open-mode peers).
    public let signer: RequestSigner?
    /// Sent as `X-Request-Id` with every request (a round's id), so that the peer's log lines of
    /// the round carry the same id as this node's.
    public let requestID: String?

    public init(baseURL: String, client: CurlClient = CurlClient(), signer: RequestSigner? = nil, requestID: String? = nil) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.client = client
        self.signer = signer
        self.requestID = requestID
    }

    public var peerName: String { baseURL }

    /// The answer, and the node whose signature it carried (checked when this node authenticates
    /// answers, see `AnswerCheck`).
    private func call(_ method: String, _ path: String, body: [UInt8]?) async throws(SyncNodeError) -> (HTTPResult, NodeID?) {
        var headers = signer?.headers(method: method, path: path, body: body ?? []) ?? [:]
        if body != nil { headers["Content-Type"] = "application/x-syncnode-batch" }
        if let requestID { headers["X-Request-Id"] = requestID }
        let result = try await client.send(method: method, url: baseURL + path, headers: headers, body: body)
        guard result.status == 200 else {
            if let envelope = try? WireCodec.decodeMessage(ErrorEnvelope.self, from: result.body) {
                if envelope.error.code == "clock_skew" || envelope.error.code == "stale_request" {
                    var error = SyncNodeError(
                        .clockSkew,
                        "\(baseURL) refused the request: \(envelope.error.message). If this node's clock was wrong when the work was recorded, set the clock right, then repair the work recorded meanwhile"
                    ).next(.repairClock)
                    // The answer's Date header tells the peer's time to the second: enough to tell
                    // which clock is wrong when they are minutes or days apart.
                    if let date = result.headers["date"].flatMap(Self.httpDate) {
                        error.peerClockSkewMillis = Int64(date.timeIntervalSince1970 * 1000) - Int64(signer?.clock.nowMillis() ?? 0)
                    }
                    throw error
                }
                // What this node's operator can do about it, for the interface to say.
                let step: NextStep? =
                    switch envelope.error.code {
                    case "bad_signature": .compareKeys
                    case "unknown_node": .awaitApproval
                    default: nil
                    }
                var error = SyncNodeError(
                    envelope.error.code == "not_found" ? .notFound : .peerRefused,
                    "\(baseURL) refused the request: \(envelope.error.message) (HTTP \(result.status), \(envelope.error.code))")
                error.nextStep = step
                throw error
            }
            throw SyncNodeError(.peerRefused, "\(baseURL) answered HTTP \(result.status); is this a syncnode server?")
        }
        guard let check = signer?.answers else { return (result, nil) }
        return (result, try check.answerer(headers: result.headers, nonce: headers["Syncnode-Nonce"] ?? "", body: result.body, url: baseURL))
    }

    private static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }

    public func status() async throws(SyncNodeError) -> (StatusMessage, wireBytes: Int) {
        let (result, answerer) = try await call("GET", "/v1/status", body: nil)
        let status: StatusMessage
        do {
            status = try WireCodec.decodeMessage(StatusMessage.self, from: result.body)
        } catch {
            throw SyncNodeError(
                .protocolViolation, "\(baseURL) sent a status this node cannot read; is it a syncnode server of a compatible version?")
        }
        if let answerer, answerer != status.identity.node {
            throw SyncNodeError(
                .peerRefused,
                "\(baseURL) says it is node \(status.identity.node.short) but signed its answer as node \(answerer.short); nothing it said was used")
        }
        return (status, result.bytesReceived)
    }

    public func pull(_ request: PullRequest) async throws(SyncNodeError) -> PulledBatch {
        let body: [UInt8]
        do {
            body = try WireCodec.encodeMessage(request)
        } catch {
            throw SyncNodeError(.invalidInput, "cannot encode the pull request")
        }
        let (result, answerer) = try await call("POST", "/v1/pull", body: body)
        var batch = try Self.decodeBatch(result.body, from: baseURL, wireBytes: result.bytesReceived + result.bytesSent)
        batch.answeredBy = answerer
        return batch
    }

    public func push(_ batch: [UInt8]) async throws(SyncNodeError) -> (PushResponse, wireBytes: Int) {
        let (result, _) = try await call("POST", "/v1/push", body: batch)
        do {
            return (try WireCodec.decodeMessage(PushResponse.self, from: result.body), result.bytesSent + result.bytesReceived)
        } catch {
            throw SyncNodeError(.protocolViolation, "\(baseURL) sent a push answer this node cannot read")
        }
    }

    public func attachmentsMissing() async throws(SyncNodeError) -> AttachmentsMissing {
        let (result, _) = try await call("POST", "/v1/attachments/missing", body: [])
        do {
            return try WireCodec.decodeMessage(AttachmentsMissing.self, from: result.body)
        } catch {
            throw SyncNodeError(.protocolViolation, "\(baseURL) sent a list of missing files this node cannot read")
        }
    }

    public func fetchAttachment(_ request: AttachmentFetch) async throws(SyncNodeError) -> [UInt8] {
        let body: [UInt8]
        do {
            body = try WireCodec.encodeMessage(request)
        } catch {
            throw SyncNodeError(.invalidInput, "cannot encode the fetch request")
        }
        return try await call("POST", "/v1/attachments/fetch", body: body).0.body
    }

    public func uploadAttachment(_ part: AttachmentPart, bytes: [UInt8]) async throws(SyncNodeError) -> AttachmentReceipt {
        let (result, _) = try await call("POST", "/v1/attachments/upload", body: try Self.uploadBody(part, bytes: bytes))
        do {
            return try WireCodec.decodeMessage(AttachmentReceipt.self, from: result.body)
        } catch {
            throw SyncNodeError(.protocolViolation, "\(baseURL) sent an upload answer this node cannot read")
        }
    }
}
