import CCurl
import Dispatch
import Foundation
import NIOPosix
import Synchronization

/// Settings of the libcurl client.
public struct HTTPClientOptions: Sendable {
    /// Whole-request limit.
    public var timeoutSeconds: Double = 60
    public var connectTimeoutSeconds: Double = 10
    /// Abort when fewer than `lowSpeedBytesPerSecond` move for `lowSpeedSeconds` (a stalled link).
    public var lowSpeedBytesPerSecond = 64
    public var lowSpeedSeconds = 20
    /// A CA bundle to verify servers against instead of the system's.
    public var caFile: String?
    /// The server's public key must be one of these (`sha256//BASE64`, several joined by `;`), as
    /// well as carry a certificate the CA vouches for: a certificate some other CA issued for the
    /// peer's name is refused. `serve --tls-cert` prints its pin.
    public var pinnedPublicKey: String?
    /// Largest response body accepted after decompression.
    public var maxResponseBytes = 512 * 1024 * 1024
    /// Keep connections open between requests to the same peer (HTTP keep-alive). Off: every
    /// request opens its own connection (fault-injection tests that cut the n-th connection).
    public var reuseConnections = true

    public init() {}
}

/// A finished HTTP exchange.
public struct HTTPResult: Sendable {
    public var status: Int
    public var headers: [String: String]
    /// The body, decompressed.
    public var body: [UInt8]
    /// Bytes of request and response bodies as they crossed the network.
    public var bytesSent: Int
    public var bytesReceived: Int
}

/// An HTTP client on libcurl's easy interface. Each request runs its blocking `curl_easy_perform`
/// on a thread of its own, off Swift's cooperative pool. Proxies come from the environment
/// (`https_proxy`, `http_proxy`, `no_proxy`), as libcurl reads them itself.
///
/// Easy handles are kept for reuse after a successful request, so consecutive requests to one peer
/// (a round's status, pulls and push) travel on one kept-alive connection: on a lossy link every
/// new connection risks a lost SYN and a one-second retransmission wait.
public struct CurlClient: Sendable {
    public let options: HTTPClientOptions
    private let handles = HandlePool()

    private static let initialized: Bool = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK }()

    public init(options: HTTPClientOptions = HTTPClientOptions()) {
        self.options = options
    }

    /// Idle easy handles (each with its connection cache). A handle is used by one request at a time.
    private final class HandlePool: @unchecked Sendable {
        private let lock = NSLock()
        private var idle: [UnsafeMutableRawPointer] = []
        private static let maxIdle = 4

        func take() -> UnsafeMutableRawPointer? {
            lock.lock()
            defer { lock.unlock() }
            return idle.popLast()
        }

        func give(_ handle: UnsafeMutableRawPointer) {
            lock.lock()
            let keep = idle.count < Self.maxIdle
            if keep { idle.append(handle) }
            lock.unlock()
            if !keep { curl_easy_cleanup(handle) }
        }

        deinit {
            for handle in idle { curl_easy_cleanup(handle) }
        }
    }

    /// Sends a request. The body is sent gzip-compressed when `gzipBody` is set; a gzip response
    /// is decompressed. Throws `unreachable` for transport failures (refused, timed out, stalled,
    /// TLS), never for HTTP error statuses.
    public func send(method: String, url: String, headers: [String: String] = [:], body: [UInt8]? = nil, gzipBody: Bool = true)
        async throws(SyncNodeError) -> HTTPResult
    {
        let options = self.options
        let handles = self.handles
        if Self.transferThreads == 0 {
            return try CurlClient.perform(method: method, url: url, headers: headers, body: body, gzipBody: gzipBody, options: options, pool: handles)
        }
        let result: Result<HTTPResult, SyncNodeError>
        do {
            result = try await Self.transfers.runIfActive {
                Result { () throws(SyncNodeError) in
                    try CurlClient.perform(
                        method: method, url: url, headers: headers, body: body, gzipBody: gzipBody, options: options, pool: handles)
                }
            }
        } catch {
            result = .failure(SyncNodeError(.unreachable, "the transfer to \(url) could not start: \(error)"))
        }
        return try result.get()
    }

    /// A transfer holds its thread for as long as it lasts (minutes on a slow link): threads of
    /// their own (NIO's pool), so that neither Swift's cooperative threads (as many as cores) nor
    /// the storage threads wait behind one, and a node can talk to many peers at once.
    /// The number in effect, fixed at the first transfer; 0: on the calling thread.
    private static let transferThreads: Int = requestedTransferThreads.withLock { value in
        let n = value ?? 16
        value = n
        return n
    }
    private static let transfers: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(1, transferThreads))
        pool.start()
        return pool
    }()
    private static let requestedTransferThreads = Mutex<Int?>(nil)

    /// Sets how many transfers may run at once (16 when not set), before the first transfer;
    /// once transfers have run, the number stays. 0 runs each transfer on the calling thread (a
    /// process that syncs once and ends). Returns the number in effect.
    @discardableResult
    public static func configure(transferThreads: Int) -> Int {
        requestedTransferThreads.withLock { value in
            if value == nil { value = max(0, transferThreads) }
            return value!
        }
    }

    private final class Sink {
        var body: [UInt8] = []
        var headers: [String: String] = [:]
        var limit: Int
        var overflow = false
        init(limit: Int) { self.limit = limit }
    }

    private static func perform(
        method: String, url: String, headers: [String: String], body: [UInt8]?, gzipBody: Bool, options: HTTPClientOptions, pool: HandlePool
    ) throws(SyncNodeError) -> HTTPResult {
        guard initialized else { throw SyncNodeError(.unreachable, "libcurl could not be initialised") }
        let handle: UnsafeMutableRawPointer
        if let kept = pool.take() {
            // Reset to default options when it was kept; its live connections remain.
            handle = kept
        } else if let fresh = curl_easy_init() {
            handle = fresh
        } else {
            throw SyncNodeError(.unreachable, "libcurl could not be initialised")
        }
        var succeeded = false
        // Kept only after a complete exchange: a failed one may have left its connection unusable.
        defer { if succeeded && options.reuseConnections { pool.give(handle) } else { curl_easy_cleanup(handle) } }
        let sink = Sink(limit: options.maxResponseBytes)
        let sinkPointer = Unmanaged.passUnretained(sink).toOpaque()
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        var list: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(list) }
        var allHeaders = headers
        // curl sends "Expect: 100-continue" for large bodies; the server never answers it and
        // each request would stall a second. An empty value removes the header.
        allHeaders["Expect"] = ""
        allHeaders["Accept-Encoding"] = "gzip"
        var payload = body ?? []
        if body != nil && gzipBody {
            payload = Gzip.compress(payload)
            allHeaders["Content-Encoding"] = "gzip"
        }
        for (name, value) in allHeaders.sorted(by: { $0.key < $1.key }) {
            list = curl_slist_append(list, value.isEmpty ? "\(name):" : "\(name): \(value)")
        }

        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errorPointer in
            payload.withUnsafeBytes { payloadPointer in
                setOptions(handle, method: method, url: url, options: options, errorBuffer: errorPointer.baseAddress, headers: list)
                if body != nil {
                    _ = ccurl_setopt_pointer(
                        handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: payloadPointer.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
                    _ = ccurl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(payload.count))
                }
                collect(handle, into: sinkPointer)
                return curl_easy_perform(handle)
            }
        }
        guard code == CURLE_OK else {
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw failure(code, detail: detail, url: url, overflow: sink.overflow, options: options)
        }
        var status = 0
        _ = ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var received = sink.body
        let wireReceived = received.count
        if sink.headers["content-encoding"]?.lowercased() == "gzip" {
            received = try Gzip.decompress(received, maxSize: options.maxResponseBytes)
        }
        // The options point into this call's buffers: back to defaults before the handle is kept
        // (the connection cache survives a reset).
        curl_easy_reset(handle)
        succeeded = true
        return HTTPResult(status: status, headers: sink.headers, body: received, bytesSent: payload.count, bytesReceived: wireReceived)
    }

    /// The request's options: where, how, the time and speed bounds, and TLS as this node
    /// requires it.
    private static func setOptions(
        _ handle: UnsafeMutableRawPointer, method: String, url: String, options: HTTPClientOptions, errorBuffer: UnsafeMutablePointer<CChar>?,
        headers: UnsafeMutablePointer<curl_slist>?
    ) {
        _ = ccurl_setopt_string(handle, CURLOPT_URL, url)
        _ = ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method)
        _ = ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        _ = ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(options.timeoutSeconds * 1000))
        _ = ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(options.connectTimeoutSeconds * 1000))
        _ = ccurl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, options.lowSpeedBytesPerSecond)
        _ = ccurl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, options.lowSpeedSeconds)
        _ = ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
        _ = ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
        if let ca = options.caFile { _ = ccurl_setopt_string(handle, CURLOPT_CAINFO, ca) }
        if let pin = options.pinnedPublicKey { _ = ccurl_setopt_string(handle, CURLOPT_PINNEDPUBLICKEY, pin) }
        // TLS 1.2 at least; HTTP and HTTPS only, and no redirects (libcurl's default): an answer
        // cannot move a sync to plain HTTP or to another scheme.
        _ = ccurl_setopt_long(handle, CURLOPT_SSLVERSION, Int(CURL_SSLVERSION_TLSv1_2))
        _ = ccurl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = ccurl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
        _ = ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer)
        _ = ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, headers)
    }

    /// The answer's body (up to the sink's limit) and headers, into the sink `sink` points to.
    private static func collect(_ handle: UnsafeMutableRawPointer, into sink: UnsafeMutableRawPointer) {
        _ = ccurl_setopt_write_function(handle) { data, size, count, user in
            let sink = Unmanaged<Sink>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            if sink.body.count + n > sink.limit {
                sink.overflow = true
                return 0
            }
            if let data { sink.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: n)) }
            return n
        }
        _ = ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, sink)
        _ = ccurl_setopt_header_function(handle) { data, size, count, user in
            let sink = Unmanaged<Sink>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            if let data {
                let line = String(decoding: UnsafeRawBufferPointer(start: data, count: n), as: UTF8.self)
                if let colon = line.firstIndex(of: ":") {
                    let name = line[..<colon].lowercased()
                    sink.headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
                }
            }
            return n
        }
        _ = ccurl_setopt_pointer(handle, CURLOPT_HEADERDATA, sink)
    }

    /// A failed transfer, said as what the operator can check.
    private static func failure(_ code: CURLcode, detail: String, url: String, overflow: Bool, options: HTTPClientOptions) -> SyncNodeError {
        if overflow {
            return SyncNodeError(.peerRefused, "the answer from \(url) is larger than \(options.maxResponseBytes) bytes")
        }
        let reason = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return SyncNodeError(.unreachable, "no complete answer from \(url) in time (\(reason)); the link may be down or stalled, retry later")
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return SyncNodeError(.unreachable, "cannot connect to \(url) (\(reason)); is the peer running and the address right?")
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
            return SyncNodeError(
                .unreachable,
                "TLS with \(url) failed: the server's public key is not the pinned one; another server may be answering at that address, or the peer's key was replaced. Compare the pin with the one the peer printed when it started"
            )
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CACERT_BADFILE:
            return SyncNodeError(
                .unreachable, "TLS with \(url) failed (\(reason)); check the server certificate and the CA certificate this node trusts")
        default:
            return SyncNodeError(.unreachable, "request to \(url) failed (\(reason))")
        }
    }
}
