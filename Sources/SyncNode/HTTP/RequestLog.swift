import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// One log line and one count per request, under a request id the answer carries back
/// (`X-Request-Id`). A caller's own id is kept when it is a short plain token (a sync round sends
/// its round id, so both sides' lines share it); anything else is replaced, so a caller cannot
/// write into this node's log.
///
/// Reads that succeed (status, pull, health, metrics, pages) log at debug: a node others sync
/// with while nothing changes stays quiet at the default level. Writes and failures log at info.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = NodeRequestContext
    let logger: Logger
    let metrics: NodeMetrics

    static let header = HTTPField.Name("X-Request-Id")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let id = request.headers[Self.header].flatMap(Self.acceptable) ?? Self.newID()
        var context = context
        context.logger[metadataKey: "request.id"] = .string(id)
        do {
            var response = try await next(request, context)
            response.headers[Self.header] = id
            finished(request, context, id: id, status: response.status.code, started: started, bytesOut: response.body.contentLength ?? 0)
            return response
        } catch {
            let answered = error as? any HTTPResponseError
            finished(
                request, context, id: id, status: answered?.status.code ?? 500, started: started, bytesOut: 0,
                unexpected: answered == nil ? error : nil)
            throw IdentifiedError(wrapped: error, id: id)
        }
    }

    private func finished(
        _ request: Request, _ context: Context, id: String, status: Int, started: ContinuousClock.Instant, bytesOut: Int,
        unexpected: (any Error)? = nil
    ) {
        let seconds = (ContinuousClock.now - started).seconds
        let route = context.endpointPath ?? "unmatched"
        let bytesIn = request.headers[.contentLength].flatMap(Int.init) ?? 0
        metrics.request(route: route, status: status, seconds: seconds, bytesIn: bytesIn, bytesOut: bytesOut)
        let isRead = request.method == .get || request.method == .head || route == "/v1/pull"
        let level: Logger.Level = status >= 400 || !isRead ? .info : .debug
        // The metadata is built only when the level lets the line out.
        logger.log(
            level: level, "\(request.method) \(request.uri.path) \(status)",
            metadata: {
                var metadata: Logger.Metadata = [
                    "request.id": .string(id), "http.route": .string(route), "http.status": .stringConvertible(status),
                    "http.duration_ms": .stringConvertible((seconds * 10_000).rounded() / 10), "http.bytes_in": .stringConvertible(bytesIn),
                    "http.bytes_out": .stringConvertible(bytesOut),
                    "client.address": .string(context.remoteAddress.map { "\($0.ipAddress ?? "?")" } ?? "?"),
                ]
                // The request id is the caller's word; the node its signature proved is not.
                if let node = context.logNote.node { metadata["caller.node"] = .string(node.hex) }
                if let unexpected { metadata["error"] = .string("\(unexpected)") }
                return metadata
            }())
    }

    /// A caller's id: 1 to 64 letters, digits, `-`, `_` or `.`.
    static func acceptable(_ text: String) -> String? {
        guard (1...64).contains(text.utf8.count), text.utf8.allSatisfy({ Self.allowed.contains($0) }) else { return nil }
        return text
    }

    private static let allowed = Set(Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.".utf8))

    /// 12 hex digits: enough to tell a day's requests apart in one node's log.
    static func newID() -> String {
        let digits = String(UInt64.random(in: 0..<(1 << 48)), radix: 16)
        return String(repeating: "0", count: 12 - digits.count) + digits
    }
}

/// An error on its way out with the request id added to its answer.
struct IdentifiedError: HTTPResponseError {
    let wrapped: any Error
    let id: String

    var status: HTTPResponse.Status { (wrapped as? any HTTPResponseError)?.status ?? .internalServerError }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response: Response
        if let answer = wrapped as? any HTTPResponseError {
            response = try answer.response(from: request, context: context)
        } else {
            response = Response(status: .internalServerError)
        }
        response.headers[RequestLogMiddleware.header] = id
        return response
    }
}
