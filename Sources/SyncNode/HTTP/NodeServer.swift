import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import SyncProtocol
import Synchronization

/// The node's HTTP API (Hummingbird): `/health`, `/v1/status`, `/v1/pull`, `/v1/push`.
///
/// Request bodies may be gzip-compressed (`Content-Encoding: gzip`); responses are compressed when
/// the caller accepts gzip. Errors are `{"error": {"code", "message"}}` with a 4xx or 5xx status.
public enum NodeServer {
    /// Builds the application. `onListening` receives the bound port (useful with port 0).
    public static func application(
        service: SyncService, host: String, port: Int, tls: TLSFiles? = nil, services: [any Service] = [], logger: Logger,
        metricsAccess: MetricsAccess = .local, routes: [any NodeRoutes] = [], onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws(SyncNodeError) -> some ApplicationProtocol {
        // A connection that sends nothing for this long is closed, so idle or stalled clients cannot
        // hold the node's descriptors; past `maxConnections` new ones wait in the listen backlog.
        var guardLimits = service.limits.connections
        guardLimits.keepAliveDeadline = .seconds(Int64(service.limits.idleTimeoutSeconds))
        let connections = ConnectionGuard(limits: guardLimits)
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [connections.handler()], idleTimeout: .seconds(Int64(service.limits.idleTimeoutSeconds)))
        var server = HTTPServerBuilder.http1(configuration: http1)
        if let tls {
            let loaded = try tls.load()
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: loaded.chain.map { .certificate($0) }, privateKey: .privateKey(loaded.key))
            configuration.minimumTLSVersion = .tlsv12
            do {
                server = try .tls(.http1(configuration: http1), tlsConfiguration: configuration)
            } catch {
                throw SyncNodeError(
                    .invalidInput,
                    "cannot use the TLS certificate \(tls.certificate) and key \(tls.privateKey): \(error); give PEM files that belong together")
            }
        }
        let router = router(service: service, logger: logger, metricsAccess: metricsAccess)
        for more in routes { more.register(on: router) }
        return Application(
            router: router,
            server: server,
            configuration: ApplicationConfiguration(
                address: .hostname(host, port: port), serverName: "syncnode",
                availableConnectionsDelegate: .maximum(service.limits.maxConnections, logger: logger)),
            services: services,
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    /// PEM files for serving HTTPS.
    public struct TLSFiles: Sendable {
        public var certificate: String
        public var privateKey: String

        /// The certificate chain and key, refused when unreadable or when the certificate has
        /// expired or is not valid yet (every client would refuse it: better said at start).
        func load(now: Date = Date()) throws(SyncNodeError) -> (chain: [NIOSSLCertificate], key: NIOSSLPrivateKey) {
            let chain: [NIOSSLCertificate]
            let key: NIOSSLPrivateKey
            do {
                chain = try NIOSSLCertificate.fromPEMFile(certificate)
                key = try NIOSSLPrivateKey(file: privateKey, format: .pem)
            } catch {
                throw SyncNodeError(
                    .invalidInput,
                    "cannot use the TLS certificate \(certificate) and key \(privateKey): \(error); give PEM files that belong together")
            }
            guard let leaf = chain.first else {
                throw SyncNodeError(.invalidInput, "\(certificate) holds no certificate; give the PEM certificate (chain) of this server")
            }
            let seconds = Int64(now.timeIntervalSince1970)
            if Int64(leaf.notValidAfter) < seconds {
                throw SyncNodeError(
                    .invalidInput,
                    "the TLS certificate \(certificate) expired at \(UTCTime.text(UInt64(max(0, leaf.notValidAfter)) * 1000)) UTC; every peer would refuse it. Renew it and start again"
                )
            }
            if Int64(leaf.notValidBefore) > seconds {
                throw SyncNodeError(
                    .invalidInput,
                    "the TLS certificate \(certificate) is valid only from \(UTCTime.text(UInt64(max(0, leaf.notValidBefore)) * 1000)) UTC; check this machine's clock or the certificate"
                )
            }
            return (chain, key)
        }

        /// The public-key pin of the certificate, `sha256//` and the base64 SHA-256 of its
        /// SubjectPublicKeyInfo: what a client's `--pin` takes.
        public func pin() throws(SyncNodeError) -> String {
            let leaf = try load().chain[0]
            do {
                let spki = try leaf.extractPublicKey().toSPKIBytes()
                return "sha256//" + Data(SHA256.hash(data: spki)).base64EncodedString()
            } catch {
                throw SyncNodeError(.invalidInput, "cannot read the public key of \(certificate): \(error)")
            }
        }

        public init(certificate: String, privateKey: String) {
            self.certificate = certificate
            self.privateKey = privateKey
        }
    }

    /// The routes, separate from the listener so tests can call them in process.
    public static func router(service: SyncService, logger: Logger, metricsAccess: MetricsAccess = .local) -> Router<NodeRequestContext> {
        let router = Router(context: NodeRequestContext.self)
        router.add(middleware: RequestLogMiddleware(logger: logger, metrics: service.metrics))
        router.get("health") { _, _ in
            json(["status": "ok", "node": service.store.info.nodeID.hex, "label": service.store.info.label])
        }
        router.get("metrics") { _, context in
            try metricsAccess.check(caller: context.remoteAddress)
            let text = try await BlockingWork.run { try service.metricsExposition() }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
        // The sync API: every request's signature is checked by the group's middleware, from the
        // headers, before a handler runs or a byte of the body is read.
        let v1 = router.group("v1").add(middleware: SignatureAuthMiddleware(service: service))
        v1.get("status") { request, _ in
            try await respond(request, service) { try WireCodec.encodeMessage(try service.status()) }
        }
        v1.post("pull") { request, context in
            try await service.bodies.admit { () async throws -> Response in
                let body = try await readBody(request, limit: service.limits.maxBodyBytes, caller: context.caller)
                return try await respond(request, service) { try service.pull(body: body, caller: context.caller) }
            }
        }
        v1.post("push") { request, context in
            try await service.bodies.admit { () async throws -> Response in
                let body = try await readBody(request, limit: service.limits.maxBodyBytes, caller: context.caller)
                return try await respond(request, service) { try service.push(body: body, caller: context.caller) }
            }
        }
        v1.post("attachments/missing") { request, context in
            _ = try await readBody(request, limit: 1024, caller: context.caller)
            return try await respond(request, service) { try service.attachmentsMissing(caller: context.caller) }
        }
        v1.post("attachments/fetch") { request, context in
            let body = try await readBody(request, limit: 4096, caller: context.caller)
            return try await respond(request, service, compress: false) { try service.attachmentFetch(body: body) }
        }
        v1.post("attachments/upload") { request, context in
            try await service.bodies.admit { () async throws -> Response in
                let body = try await readBody(request, limit: SyncService.attachmentPartBytes + 4096, caller: context.caller)
                return try await respond(request, service) { try service.attachmentUpload(body: body, caller: context.caller) }
            }
        }
        for path in ["{version}/status", "{version}/pull", "{version}/push"] {
            router.on(RouterPath(path), method: .get) { _, context in try unsupported(context) }
            router.on(RouterPath(path), method: .post) { _, context in try unsupported(context) }
        }
        return router
    }

    /// The request's headers, names lower-cased.
    static func headerMap(_ request: Request) -> [String: String] {
        var out: [String: String] = [:]
        for field in request.headers { out[field.name.canonicalName.lowercased()] = field.value }
        return out
    }

    private static func unsupported(_ context: NodeRequestContext) throws -> Response {
        let version = context.parameters.get("version") ?? "?"
        throw APIErrorResponse(
            APIError(
                status: 404, code: "unsupported_protocol",
                message: "protocol '\(version.prefix(10))' is not spoken here; this node speaks /v1/ (protocol version \(WireCodec.protocolVersion))")
        )
    }

    /// Reads a request body up to `limit` bytes, inflating gzip within the same limit, and checks
    /// it is the body the caller signed.
    static func readBody(_ request: Request, limit: Int, caller: AuthenticatedCaller?) async throws -> [UInt8] {
        let body = try await readBody(request, limit: limit)
        do {
            try caller?.check(body: body)
        } catch {
            throw APIErrorResponse(error)
        }
        return body
    }

    /// Reads a request body up to `limit` bytes, inflating gzip within the same limit.
    static func readBody(_ request: Request, limit: Int) async throws -> [UInt8] {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIErrorResponse(
                APIError(status: 413, code: "body_too_large", message: "the body is \(length) bytes; this node accepts at most \(limit)"))
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIErrorResponse(APIError(status: 413, code: "body_too_large", message: "the body exceeds \(limit) bytes"))
        }
        let bytes = Array(buffer.readableBytesView)
        guard let encoding = request.headers[.contentEncoding]?.lowercased(), encoding != "identity" else { return bytes }
        guard encoding == "gzip" else {
            throw APIErrorResponse(
                APIError(status: 415, code: "unsupported_encoding", message: "content encoding '\(encoding.prefix(20))' is not supported; send gzip"))
        }
        do {
            return try Gzip.decompress(bytes, maxSize: limit)
        } catch {
            if error.message.contains("expands") {
                throw APIErrorResponse(APIError(status: 413, code: "body_too_large", message: "the body inflates beyond \(limit) bytes"))
            }
            throw APIErrorResponse(APIError(status: 400, code: "bad_encoding", message: "the body is not valid gzip (truncated or corrupted)"))
        }
    }

    /// Runs `produce` (store work, which blocks on SQLite) on a thread of its own rather than the
    /// server's cooperative threads, so a long apply never delays `/health` or other requests.
    /// The answer is signed by this node, bound to the request by its nonce (`AnswerCheck`).
    private static func respond(
        _ request: Request, _ service: SyncService, compress: Bool = true, _ produce: @escaping @Sendable () throws -> [UInt8]
    ) async throws -> Response {
        let bytes: [UInt8]
        do {
            bytes = try await BlockingWork.run(produce)
        } catch let error as APIError {
            throw APIErrorResponse(error)
        }
        var headers: HTTPFields = [.contentType: "application/json"]
        let nonce = request.headers[HTTPField.Name("Syncnode-Nonce")!] ?? ""
        headers[HTTPField.Name("Syncnode-Answer-Node")!] = service.store.info.nodeID.hex
        headers[HTTPField.Name("Syncnode-Answer-Signature")!] = service.store.signAnswer(nonce: nonce, body: bytes)
        let acceptsGzip = request.headers[.acceptEncoding]?.lowercased().contains("gzip") ?? false
        if compress && acceptsGzip && bytes.count > 256 {
            headers[.contentEncoding] = "gzip"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: Gzip.compress(bytes))))
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private static func json(_ object: [String: String]) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: (try? encoder.encode(object)) ?? Data())))
    }
}

/// Who may read `/metrics` (`serve --metrics`).
public enum MetricsAccess: String, Sendable, CaseIterable {
    /// Callers on this machine only (a Prometheus beside the node, or an SSH tunnel to it).
    case local
    /// Any caller that reaches the port.
    case open
    /// Nobody: `/metrics` answers 404.
    case off

    func check(caller: SocketAddress?) throws {
        switch self {
        case .open: return
        case .off:
            throw APIErrorResponse(
                APIError(
                    status: 404, code: "not_found",
                    message: "metrics are off on this node; its operator can serve them to its own machine or to everyone"))
        case .local:
            let address = caller?.ipAddress ?? ""
            if address.hasPrefix("127.") || address == "::1" || address.hasPrefix("::ffff:127.") { return }
            throw APIErrorResponse(
                APIError(
                    status: 403, code: "forbidden",
                    message:
                        "metrics are served to this machine only; scrape from the node's own machine, or have its operator serve them to everyone"))
        }
    }
}

/// More routes beside the sync API (the web pages), registered on the node's router.
public protocol NodeRoutes: Sendable {
    func register(on router: Router<NodeRequestContext>)
}

/// The context of a request to the node: Hummingbird's, plus the caller's address (the web
/// login's loose per-address bound counts the names that failed from it) and, on the sync API, the
/// node the request's signature proved.
public struct NodeRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The node the request's signature proved (`SignatureAuthMiddleware`); nil before the check,
    /// and for a node in open mode answering a caller that did not sign.
    public var caller: AuthenticatedCaller?
    /// The same node, for the request's log line: the log middleware wraps the authenticator, so it
    /// reads what the authenticator noted here (one cell shared by every copy of the context).
    let logNote = RequestLogNote()

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// Checks the signature of a request to the sync API from its headers (`SyncService.authenticate`),
/// before the handler runs or the body is read; a stranger, a stale or replayed request is answered
/// here. The handler finds the proven node in `context.caller` and checks the body against it.
struct SignatureAuthMiddleware: RouterMiddleware {
    typealias Context = NodeRequestContext
    let service: SyncService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        do {
            context.caller = try service.authenticate(
                method: request.method.rawValue, path: request.uri.path, headers: NodeServer.headerMap(request))
        } catch {
            throw APIErrorResponse(error)
        }
        context.logNote.node = context.caller?.node
        return try await next(request, context)
    }
}

/// The node a request's signature proved, noted for its log line.
final class RequestLogNote: Sendable {
    private let value = Mutex<NodeID?>(nil)

    var node: NodeID? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}

/// An API error on its way to the client as a JSON envelope.
struct APIErrorResponse: HTTPResponseError {
    let error: APIError

    init(_ error: APIError) { self.error = error }

    var status: HTTPResponse.Status { HTTPResponse.Status(code: error.status) }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        // A request refused before its body was read (a stranger, an oversized body): the
        // connection is closed after the answer rather than the body read and thrown away.
        if [401, 403, 413].contains(error.status) { headers[.connection] = "close" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: error.envelope)))
    }
}

/// Where a server listens, as `HOST:PORT` (port 0: a free one).
public struct ListenAddress: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        host = String(text[..<colon])
        self.port = port
        if host.isEmpty { return nil }
    }
}
