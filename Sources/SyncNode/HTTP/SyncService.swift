import Foundation
import SyncProtocol

/// An error answered over the API: an HTTP status, a stable code and a message.
public struct APIError: Error, Equatable, Sendable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(status) \(code): \(message)" }

    public var envelope: [UInt8] { (try? WireCodec.encodeMessage(ErrorEnvelope(code: code, message: message))) ?? [] }

    static func malformed(_ message: String) -> APIError { APIError(status: 400, code: "malformed", message: message) }

    /// The API's answer for a node error.
    init(_ error: SyncNodeError) {
        switch error.code {
        case .invalidInput, .corruptBundle: self.init(status: 400, code: "invalid_input", message: error.message)
        case .protocolViolation: self.init(status: 422, code: "protocol_violation", message: error.message)
        case .forbidden: self.init(status: 403, code: "forbidden", message: error.message)
        case .clockSkew: self.init(status: 422, code: "clock_skew", message: error.message)
        case .busy: self.init(status: 503, code: "busy", message: error.message)
        case .diskFull, .readOnly, .databaseCorrupt, .storage:
            self.init(status: 503, code: "storage_unavailable", message: "the node cannot store data right now: \(error.message)")
        default: self.init(status: 500, code: error.code.rawValue, message: error.message)
        }
    }
}

/// Limits the serving side enforces.
public struct ServiceLimits: Sendable {
    /// Largest request body, compressed or not (413 beyond it).
    public var maxBodyBytes = 64 * 1024 * 1024
    /// Most transactions and bytes in one pull response, whatever the caller asks for.
    public var maxBatchTransactions = 2000
    public var maxBatchBytes = 8 * 1024 * 1024
    /// Most request bodies read, inflated and processed at once; further authenticated requests
    /// wait their turn (up to `maxWaitingBodies`, then 503). Bounds the memory bodies can take.
    public var maxConcurrentBodies = 4
    public var maxWaitingBodies = 512
    /// Seconds a connection may stay silent before it is closed.
    public var idleTimeoutSeconds = 30
    /// Most open connections; more wait in the listen backlog.
    public var maxConnections = 2048
    /// Connections still waiting for their request head: how long they may, and how many one
    /// address and the node may hold (`ConnectionGuard`).
    public var connections = ConnectionGuard.Limits()

    public init() {}
}

/// The serving side of the sync protocol, independent of HTTP: it turns request bytes into
/// response bytes. The HTTP server and the in-process transport both call it.
public struct SyncService: Sendable {
    public let store: Store
    public let limits: ServiceLimits
    let replayCache = ReplayCache()
    /// What each caller's last request told (saved with the replay cache).
    let contacts = ContactBook()
    /// Admits request bodies `limits.maxConcurrentBodies` at a time.
    let bodies: AdmissionGate
    /// What `/metrics` reports.
    public let metrics: NodeMetrics

    public init(store: Store, limits: ServiceLimits = ServiceLimits(), metrics: NodeMetrics = NodeMetrics()) {
        self.store = store
        self.limits = limits
        self.metrics = metrics
        self.bodies = AdmissionGate(slots: limits.maxConcurrentBodies, maxWaiting: limits.maxWaitingBodies)
    }

    public var identity: PeerIdentity { PeerIdentity(node: store.info.nodeID, site: store.info.site, label: store.info.label) }

    public func status() throws(APIError) -> StatusMessage {
        do {
            return StatusMessage(
                identity: identity, protocolVersion: WireCodec.protocolVersion, schemaVersion: Store.schemaVersion, clock: store.clock.nowMillis(),
                vector: try store.vector())
        } catch {
            throw APIError(error)
        }
    }

    /// `POST /v1/pull`: a batch of what the caller's vector lacks.
    ///
    /// - Parameter caller: the node whose signature the request carried (see `authenticate`); the
    ///   refusals of its work are reported to it. Nil only where requests are not signed (a node in
    ///   open mode, an in-process transport), where the request's own `from` is taken.
    public func pull(body: [UInt8], caller authenticated: AuthenticatedCaller? = nil) throws(APIError) -> [UInt8] {
        let caller = authenticated?.node
        let request: PullRequest
        do {
            request = try WireCodec.decodeMessage(PullRequest.self, from: body)
        } catch {
            throw .malformed("the pull request is not valid JSON of the expected shape (protocolVersion, from, vector, maxTransactions, maxBytes)")
        }
        // Noted before the protocol check: HQ's sync report shows a node still speaking an old one.
        if let authenticated { noteContact(authenticated, protocolVersion: request.protocolVersion, ownSeq: request.vector[authenticated.node]) }
        try checkProtocol(request.protocolVersion)
        guard request.maxTransactions > 0, request.maxBytes > 0 else { throw .malformed("maxTransactions and maxBytes must be positive") }
        do {
            let batch = try store.frames(
                missingFrom: request.vector, maxTransactions: min(request.maxTransactions, limits.maxBatchTransactions),
                maxBytes: min(request.maxBytes, limits.maxBatchBytes))
            let rejections = try store.rejections(of: caller ?? request.from.node)
            var header = BatchHeader(
                from: identity, count: batch.frames.count, more: batch.more, clock: store.clock.nowMillis(),
                rejections: rejections.isEmpty ? nil : rejections, vouch: store.vouch(for: batch.frames, refused: batch.refused))
            if store.isAnchor && !batch.refused.isEmpty { header.refusedFrames = batch.refused }
            if let check = request.ownCheck, let digest = try store.digest(of: caller ?? request.from.node, seq: check.seq) {
                header.ownDiffers = digest != check.digest
            }
            if let checks = request.forkChecks, !checks.isEmpty {
                let forked = try store.forkedOrigins(checks)
                if !forked.isEmpty { header.forks = forked }
            }
            return BatchCodec.encode(header: try WireCodec.encodeMessage(header), frames: batch.frames)
        } catch let error as SyncNodeError {
            throw APIError(error)
        } catch {
            throw APIError(status: 500, code: "internal", message: "could not encode the batch")
        }
    }

    /// `POST /v1/push`: apply a batch; answer what was applied and the vector now held.
    ///
    /// - Parameter caller: the node whose signature the request carried; it answers for what it
    ///   leaves waiting in `held`.
    public func push(body: [UInt8], caller authenticated: AuthenticatedCaller? = nil) throws(APIError) -> [UInt8] {
        let caller = authenticated?.node
        let (header, frames): (BatchHeader, [ArraySlice<UInt8>])
        do {
            (header, frames) = try BatchCodec.read(body)
        } catch {
            throw .malformed(error.description)
        }
        if let authenticated { noteContact(authenticated, protocolVersion: header.protocolVersion, ownSeq: nil) }
        try checkProtocol(header.protocolVersion)
        let plan: Store.FramePlan
        do {
            plan = try store.planFrames(frames)
        } catch {
            switch error {
            case .malformed(let message): throw .malformed(message)
            case .refused(let refusal): throw APIError(refusal)
            }
        }
        do {
            let report = try store.applyFrames(frames, plan, via: caller, source: caller.map { "node \($0.short)" })
            metrics.applied(report.applied, via: "push")
            metrics.refused(report.refused.count, by: "this_node")
            return try WireCodec.encodeMessage(
                PushResponse(
                    applied: report.applied, duplicates: report.duplicates, vector: try store.vector(), refused: report.refused, held: report.held))
        } catch let error as SyncNodeError {
            throw APIError(error)
        } catch {
            throw APIError(status: 500, code: "internal", message: "could not encode the answer")
        }
    }

    /// The metrics as Prometheus text, with callers heard since the contacts were last saved.
    public func metricsExposition() throws(SyncNodeError) -> [UInt8] {
        try metrics.exposition(store: store, recentContacts: contacts.current())
    }

    private func noteContact(_ caller: AuthenticatedCaller, protocolVersion: Int, ownSeq: UInt64?) {
        contacts.note(caller.node, NodeContact(heard: caller.heard, skewMillis: caller.skewMillis, protocolVersion: protocolVersion, ownSeq: ownSeq))
    }

    /// Message bodies of version 2 have the same shape as this version's: they are read (their
    /// refusal statements are not believed). A round still needs both sides on one version.
    private func checkProtocol(_ version: Int) throws(APIError) {
        guard (WireCodec.oldestReadableProtocolVersion...WireCodec.protocolVersion).contains(version) else {
            throw APIError(
                status: 400, code: "unsupported_protocol",
                message:
                    "protocol version \(version) is not spoken here; this node speaks version \(WireCodec.protocolVersion). Upgrade the older node")
        }
    }
}
