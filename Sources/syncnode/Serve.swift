import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import SyncMirror
import SyncNode
import SyncProtocol
import SyncWeb

extension SyncNodeCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the sync API and sync periodically with remembered peers, until SIGTERM or SIGINT.")

        @OptionGroup var node: NodeOptions
        @OptionGroup var client: ClientOptions

        @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free one).") var listen = "127.0.0.1:8420"
        @Option(help: "Interval between syncs with each remembered peer: 30s, 5m, 1h.") var every = "5m"
        @Option(help: "Largest request body accepted, in bytes (413 beyond it).") var maxBodyBytes = 64 * 1024 * 1024
        @Option(help: "Write the bound port to this file once listening.") var portFile: String?
        @Option(help: "Log level: trace, debug, info, notice, warning, error. At info: writes, failures and rounds that moved work.")
        var logLevel = "info"
        @Option(help: "Log lines as text (for people) or json (one object per line, for machines); default $SYNCNODE_LOG_FORMAT, else text.")
        var logFormat: String?
        @Option(help: "Who may read /metrics (Prometheus text): local (this machine), open (anyone reaching the port) or off.")
        var metrics = "local"
        @Option(help: "Serve HTTPS with this PEM certificate (chain); needs --tls-key.") var tlsCert: String?
        @Option(help: "The PEM private key of --tls-cert.") var tlsKey: String?
        @Option(
            help:
                "Keep a PostgreSQL mirror of the merged view current: postgres://USER@HOST:PORT/DATABASE (credentials also from PG*; see `syncnode mirror`)."
        )
        var mirrorPostgres: String?

        func validate() throws {
            guard ListenAddress(listen) != nil else { throw ValidationError("--listen takes HOST:PORT, such as 0.0.0.0:8420") }
            guard IntervalText.seconds(every) != nil else { throw ValidationError("--every takes a duration such as 30s, 5m or 1h") }
            guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive") }
            guard Logger.Level(rawValue: logLevel) != nil else {
                throw ValidationError("--log-level is one of trace, debug, info, notice, warning, error")
            }
            guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
            if let logFormat, LogFormat(rawValue: logFormat) == nil { throw ValidationError("--log-format is text or json") }
            guard MetricsAccess(rawValue: metrics) != nil else { throw ValidationError("--metrics is local, open or off") }
        }

        func run() async throws {
            let address = ListenAddress(listen)!
            raiseDescriptorLimit()
            if let logFormat { LogFormat.current = LogFormat(rawValue: logFormat)! }
            let logger = {
                var logger = Logger(label: "syncnode")
                logger.logLevel = Logger.Level(rawValue: logLevel)!
                return logger
            }()
            let mirrorTarget = try mirrorPostgres.map { url in try withFailure { () throws(SyncNodeError) in try PostgresTarget.parse(url) } }
            let store: Store
            do {
                store = try Store.open(node.directory, clock: CLIClock.current)
            } catch {
                throw failure(error)
            }
            // The port first, before anything syncs: a node already serving there, or a port this
            // user may not take, is a plain message and exit 71, not a stack of socket errors.
            if let problem = ListenAddress.bindProblem(host: address.host, port: address.port) {
                try? store.close()
                note("error: cannot listen on \(address.host):\(address.port): \(problem)")
                throw ExitCode(71)
            }
            // Work held for an origin the registry has learned of since (a run cut short).
            _ = try? store.releaseHeldWork()
            // The review's kept lists brought up to the plan (after an upgrade, or a plan that came
            // by sync) beside the start, rather than at the first view of the dashboard.
            Task { _ = try? await BlockingWork.run { try store.refreshReviewIndex() } }
            var limits = ServiceLimits()
            limits.maxBodyBytes = maxBodyBytes
            let counters = NodeMetrics()
            let scheduler = SyncScheduler(
                store: store, interval: IntervalText.seconds(every)!, client: client.curl, logger: logger, metrics: counters,
                // A long round (the first after days offline) says how far it is: often on a
                // terminal, every 10 s in a service's journal.
                progressSeconds: isatty(2) == 1 ? 2 : 10)
            let portFile = self.portFile
            let tls = tlsCert.map { NodeServer.TLSFiles(certificate: $0, privateKey: tlsKey!) }
            let scheme = tls == nil ? "http" : "https"
            let service = SyncService(store: store, limits: limits, metrics: counters)
            var background: [any Service] = [scheduler, ReplayCacheKeeper(service: service)]
            if let mirrorTarget {
                var mirrorLogger = logger
                mirrorLogger[metadataKey: "mirror.target"] = "\(mirrorTarget)"
                background.append(
                    MirrorService(mirror: PostgresMirror(store: store, target: mirrorTarget, logger: mirrorLogger), logger: mirrorLogger))
            }
            service.restoreReplayCache()
            let app = try withFailure { () throws(SyncNodeError) in
                try NodeServer.application(
                    service: service, host: address.host, port: address.port, tls: tls, services: background,
                    logger: logger, metricsAccess: MetricsAccess(rawValue: metrics)!,
                    routes: [WebInterface(store: store, secureCookies: tls != nil, logger: logger)]
                ) { port in
                    logger.notice(
                        "listening on \(scheme)://\(address.host):\(port) as \(store.info.label) (\(store.info.nodeID.hex))",
                        metadata: [
                            "node": "\(store.info.nodeID.hex)", "label": "\(store.info.label)", "port": .stringConvertible(port),
                            "version": "\(SyncNodeVersion.text)",
                        ])
                    if let tls, let pin = try? tls.pin() {
                        logger.notice("TLS public-key pin of this server: \(pin) (peers may sync with --pin \(pin))", metadata: ["pin": "\(pin)"])
                    }
                    if let portFile { try? Data(String(port).utf8).write(to: URL(fileURLWithPath: portFile)) }
                }
            }
            let started = Date()
            try await app.runService()
            service.saveReplayCache()
            try? store.close()
            logger.notice(
                "stopped after \(DurationText.describe(millis: UInt64(Date().timeIntervalSince(started) * 1000))); state saved",
                metadata: ["node": "\(store.info.nodeID.hex)"])
        }
    }
}

/// Raises the open-file limit to the hard limit: every connection takes a descriptor, and the usual
/// soft limit of 1024 would let a thousand idle clients shut the node out for everyone.
private func raiseDescriptorLimit() {
    var limit = rlimit()
    guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(RLIMIT_NOFILE_VALUE, &limit)
}

#if canImport(Glibc)
    private let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#else
    private let RLIMIT_NOFILE_VALUE = RLIMIT_NOFILE
#endif

extension ListenAddress {
    /// Why `host:port` cannot be listened on now (taken, not permitted, not an address here), or nil.
    static func bindProblem(host: String, port: Int) -> String? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let info = result else {
            return "\(host) is not an address of this machine"
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var on: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 else { return nil }
        switch errno {
        case EADDRINUSE: return "the port is in use (another syncnode serve, or another program); stop it or choose another --listen port"
        case EACCES: return "this user may not listen on port \(port); choose a port above 1023"
        case EADDRNOTAVAIL: return "\(host) is not an address of this machine"
        default: return String(cString: strerror(errno))
        }
    }
}

/// Durations on the command line: 500ms, 30s, 5m, 1h.
enum IntervalText {
    static func seconds(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let n = Double(text.dropLast(suffix.count)), n > 0, n.isFinite { return n * scale }
        }
        return nil
    }
}

/// Options of the libcurl client.
struct ClientOptions: ParsableArguments {
    @Option(help: "Give up on a request after this many seconds.") var timeout: Double = 60
    @Option(help: "Give up connecting after this many seconds.") var connectTimeout: Double = 10
    @Option(help: "Abort a transfer slower than 64 bytes/s for this many seconds (a stalled link).") var stallSeconds = 20
    @Option(help: "Verify HTTPS servers against this CA file instead of the system's.") var ca: String?
    @Option(
        help: ArgumentHelp(
            "Accept only an HTTPS server with this public key (sha256//BASE64, as `serve` prints it; several joined by ;).",
            valueName: "pin")) var pin: String?

    func validate() throws {
        if let pin {
            let pins = pin.split(separator: ";", omittingEmptySubsequences: false)
            for one in pins where !(one.hasPrefix("sha256//") && Data(base64Encoded: String(one.dropFirst(8)))?.count == 32) {
                throw ValidationError(
                    "--pin takes sha256// and the base64 SHA-256 of the server's public key (as its `serve` prints it); several are joined by ; — '\(one)' is not one"
                )
            }
        }
    }

    var curl: CurlClient {
        var options = HTTPClientOptions()
        options.timeoutSeconds = timeout
        options.connectTimeoutSeconds = connectTimeout
        options.lowSpeedSeconds = stallSeconds
        options.caFile = ca
        options.pinnedPublicKey = pin
        return CurlClient(options: options)
    }
}
