import Foundation
import SyncProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP proxy on loopback that forwards connections to an upstream port and injects faults per
/// connection: cut the request or the response after some bytes, stall, reset, delay, or
/// duplicate a request or a response; and a partition mode that refuses everything. For tests
/// and the fault harness; it only ever listens on and connects to 127.0.0.1.
public final class FaultProxy: @unchecked Sendable {
    public enum Fault: Sendable, Equatable, CustomStringConvertible {
        case pass
        /// Close both sides once this many request bytes have been forwarded.
        case cutRequest(afterBytes: Int)
        /// Close both sides once this many response bytes have been forwarded.
        case cutResponse(afterBytes: Int)
        /// Accept, then forward nothing until closed.
        case stall
        /// Refuse: close the connection at once.
        case reset
        /// Hold the connection this long before forwarding anything (later connections overtake it).
        case delay(milliseconds: Int)
        /// Forward normally, and once the first request is complete send it again to upstream on a
        /// fresh connection after this many milliseconds (its answer is discarded): a duplicated
        /// request that may arrive after later ones.
        case duplicateRequest(afterMilliseconds: Int)
        /// Forward normally, but send the first complete response to the client twice.
        case duplicateResponse

        public var description: String {
            switch self {
            case .pass: return "pass"
            case .cutRequest(let n): return "cut-request(\(n))"
            case .cutResponse(let n): return "cut-response(\(n))"
            case .stall: return "stall"
            case .reset: return "reset"
            case .delay(let ms): return "delay(\(ms)ms)"
            case .duplicateRequest(let ms): return "duplicate-request(+\(ms)ms)"
            case .duplicateResponse: return "duplicate-response"
            }
        }

        /// The fault's kind without its parameter, for counting.
        public var kind: String {
            description.split(separator: "(").first.map(String.init) ?? description
        }
    }

    private let upstreamPort: UInt16
    private let lock = NSLock()
    private var listener: Int32 = -1
    private var planFunction: @Sendable (Int) -> Fault = { _ in .pass }
    private var observer: (@Sendable (Int, Fault) -> Void)?
    private var connectionCount = 0
    private var openSockets: Set<Int32> = []
    private var isPartitioned = false
    public private(set) var port: UInt16 = 0

    public init(upstreamPort: Int) {
        self.upstreamPort = UInt16(upstreamPort)
    }

    /// Decides the fault for each connection, numbered from 1.
    public func plan(_ function: @escaping @Sendable (Int) -> Fault) {
        lock.withLock { planFunction = function }
    }

    /// Called with each connection's number and fault as it is accepted.
    public func observe(_ function: @escaping @Sendable (Int, Fault) -> Void) {
        lock.withLock { observer = function }
    }

    /// Connections accepted so far.
    public var connections: Int { lock.withLock { connectionCount } }

    /// A partition: while set, every open connection is cut and every new one is reset.
    public var partitioned: Bool {
        get { lock.withLock { isPartitioned } }
        set {
            lock.withLock {
                isPartitioned = newValue
                if newValue {
                    // Shut down only; each connection's thread closes its own sockets once.
                    for s in openSockets { shutdown(s, Int32(SHUT_RDWR)) }
                }
            }
        }
    }

    /// Starts listening on 127.0.0.1 at `port` (0: a free one); returns the port.
    @discardableResult
    public func start(port requested: UInt16 = 0) throws -> UInt16 {
        guard let (fd, bound) = Loopback.listen(port: requested, reuseAddress: true) else {
            throw ProxyError("cannot listen on 127.0.0.1:\(requested)")
        }
        port = bound
        lock.withLock { listener = fd }
        Thread.detachNewThread { [self] in acceptLoop(fd) }
        return port
    }

    /// Stops accepting and closes every open connection.
    public func stop() {
        lock.withLock {
            // Shut down only: each connection's own thread closes its sockets once, when its
            // pumps have ended, so no descriptor number is closed twice or used after close.
            for s in openSockets { shutdown(s, Int32(SHUT_RDWR)) }
            if listener >= 0 {
                shutdown(listener, Int32(SHUT_RDWR))
                close(listener)
            }
            listener = -1
        }
    }

    private func acceptLoop(_ fd: Int32) {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 { return }
            let (number, fault, observer) = lock.withLock { () -> (Int, Fault, (@Sendable (Int, Fault) -> Void)?) in
                connectionCount += 1
                openSockets.insert(client)
                return (connectionCount, isPartitioned ? .reset : planFunction(connectionCount), self.observer)
            }
            observer?(number, fault)
            Thread.detachNewThread { [self] in handle(client, fault) }
        }
    }

    private func handle(_ client: Int32, _ fault: Fault) {
        if fault == .reset {
            closeAll([client])
            return
        }
        if case .delay(let ms) = fault {
            Thread.sleep(forTimeInterval: Double(ms) / 1000)
        }
        guard let upstream = connectUpstream() else {
            closeAll([client])
            return
        }
        if fault == .stall {
            // Hold the connection open without forwarding anything until the client or the proxy
            // gives up.
            var byte: UInt8 = 0
            while recv(client, &byte, 1, 0) > 0 {}
            closeAll([client, upstream])
            return
        }
        let (requestLimit, responseLimit, replayAfter): (Int, Int, Int?)
        switch fault {
        case .cutRequest(let n): (requestLimit, responseLimit, replayAfter) = (n, .max, nil)
        case .cutResponse(let n): (requestLimit, responseLimit, replayAfter) = (.max, n, nil)
        case .duplicateRequest(let ms): (requestLimit, responseLimit, replayAfter) = (.max, .max, ms)
        default: (requestLimit, responseLimit, replayAfter) = (.max, .max, nil)
        }
        let done = DispatchGroup()
        done.enter()
        Thread.detachNewThread { [self] in
            pump(from: client, to: upstream, limit: requestLimit, duplicate: false) { request in
                guard let ms = replayAfter else { return }
                Thread.detachNewThread { [self] in replay(request, afterMilliseconds: ms) }
            }
            done.leave()
        }
        pump(from: upstream, to: client, limit: responseLimit, duplicate: fault == .duplicateResponse) { _ in }
        done.wait()
        closeAll([client, upstream])
    }

    private func connectUpstream() -> Int32? {
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard upstream >= 0 else { return nil }
        lock.withLock { _ = openSockets.insert(upstream) }
        var address = Loopback.address(port: upstreamPort)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            closeAll([upstream])
            return nil
        }
        return upstream
    }

    /// Sends a captured request once more on a fresh upstream connection and discards the answer.
    private func replay(_ request: [UInt8], afterMilliseconds ms: Int) {
        Thread.sleep(forTimeInterval: Double(ms) / 1000)
        if partitioned { return }
        guard let upstream = connectUpstream() else { return }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(upstream, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if sendAll(upstream, request[...]) {
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            var received: [UInt8] = []
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(upstream, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                received += buffer[0..<n]
                if HTTPFraming.messageLength(received) != nil { break }
            }
        }
        closeAll([upstream])
    }

    /// Copies bytes until EOF or the limit; at the limit (a fault) closes both sockets. Calls
    /// `captured` with the first complete HTTP message that went through; with `duplicate`, sends
    /// that message a second time right after it.
    private func pump(from source: Int32, to target: Int32, limit: Int, duplicate: Bool, captured: ([UInt8]) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        var total = 0
        var capture: [UInt8]? = []
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            if n <= 0 {
                shutdown(target, Int32(SHUT_WR))
                return
            }
            let allowed = min(n, limit - total)
            _ = sendAll(target, buffer[0..<allowed])
            total += allowed
            if total >= limit {
                // The fault: cut both directions. The sockets are closed once both pumps end.
                shutdown(source, Int32(SHUT_RDWR))
                shutdown(target, Int32(SHUT_RDWR))
                return
            }
            if var bytes = capture {
                bytes += buffer[0..<n]
                if bytes.count > HTTPFraming.maxCapture {
                    capture = nil
                } else if let length = HTTPFraming.messageLength(bytes) {
                    let message = Array(bytes[0..<length])
                    capture = nil
                    captured(message)
                    if duplicate { _ = sendAll(target, message[...]) }
                } else {
                    capture = bytes
                }
            }
        }
    }

    private func sendAll(_ target: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var sent = 0
        let count = bytes.count
        return bytes.withUnsafeBytes { raw in
            while sent < count {
                let m = send(target, raw.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL))
                if m <= 0 { return false }
                sent += m
            }
            return true
        }
    }

    /// Closes each socket exactly once, whichever thread gets there first.
    private func closeAll(_ sockets: [Int32]) {
        lock.withLock {
            for s in sockets where s >= 0 && openSockets.remove(s) != nil {
                shutdown(s, Int32(SHUT_RDWR))
                close(s)
            }
        }
    }
}

/// Just enough HTTP/1.1 framing to find where the first message in a byte stream ends.
public enum HTTPFraming {
    /// Messages larger than this are not captured (and so not duplicated).
    public static let maxCapture = 4 * 1024 * 1024

    /// The length of the first complete message (head and `Content-Length` body), or nil when it
    /// is not complete yet or its length cannot be known (chunked, or no length in a response
    /// that has a body).
    public static func messageLength(_ bytes: [UInt8]) -> Int? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4 else { return nil }
        var headEnd: Int?
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && Array(bytes[i..<(i + 4)]) == separator {
            headEnd = i + 4
            break
        }
        guard let headEnd else { return nil }
        let head = String(decoding: bytes[0..<headEnd], as: UTF8.self).lowercased()
        var bodyLength = 0
        for line in head.split(separator: "\r\n") {
            if line.hasPrefix("transfer-encoding:") && line.contains("chunked") { return nil }
            if line.hasPrefix("content-length:") {
                guard let n = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)), n >= 0 else { return nil }
                bodyLength = n
            }
        }
        return bytes.count >= headEnd + bodyLength ? headEnd + bodyLength : nil
    }
}

/// A seeded schedule of faults, one drawn per connection: `seed=42,cut-request=0.1,
/// cut-response=0.1,stall=0.05,reset=0.05,delay=0.1,delay-ms=0..200,duplicate-request=0.05,
/// duplicate-response=0.05,cut-bytes=0..2000`. Probabilities are per connection; the rest pass.
public struct FaultPlan: Sendable, Equatable {
    public var seed: UInt64 = 1
    public var cutRequest = 0.0
    public var cutResponse = 0.0
    public var stall = 0.0
    public var reset = 0.0
    public var delay = 0.0
    public var duplicateRequest = 0.0
    public var duplicateResponse = 0.0
    public var delayMilliseconds: ClosedRange<Int> = 0...200
    public var cutBytes: ClosedRange<Int> = 0...2000
    private var random = SplitMix64(seed: 0)

    public init() { random = SplitMix64(seed: seed) }

    /// Parses a plan; throws naming the part it does not understand.
    public init(_ spec: String) throws {
        self.init()
        for part in spec.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            let pieces = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pieces.count == 2 else { throw ProxyError("'\(part)' is not NAME=VALUE") }
            let (name, value) = (pieces[0], pieces[1])
            switch name {
            case "seed":
                guard let s = UInt64(value) else { throw ProxyError("seed takes a non-negative integer") }
                seed = s
            case "delay-ms": delayMilliseconds = try Self.range(value, name)
            case "cut-bytes": cutBytes = try Self.range(value, name)
            default:
                guard let p = Double(value), (0...1).contains(p) else { throw ProxyError("\(name) takes a probability between 0 and 1") }
                switch name {
                case "cut-request": cutRequest = p
                case "cut-response": cutResponse = p
                case "stall": stall = p
                case "reset": reset = p
                case "delay": delay = p
                case "duplicate-request", "duplicate": duplicateRequest = p
                case "duplicate-response": duplicateResponse = p
                default: throw ProxyError("unknown fault '\(name)'")
                }
            }
        }
        let total = cutRequest + cutResponse + stall + reset + delay + duplicateRequest + duplicateResponse
        guard total <= 1 + 1e-9 else { throw ProxyError("the probabilities add up to \(total), more than 1") }
        random = SplitMix64(seed: seed)
    }

    private static func range(_ text: String, _ name: String) throws -> ClosedRange<Int> {
        let bounds = text.components(separatedBy: "..")
        if bounds.count == 1, let n = Int(bounds[0]), n >= 0 { return n...n }
        guard bounds.count == 2, let low = Int(bounds[0]), let high = Int(bounds[1]), low >= 0, low <= high else {
            throw ProxyError("\(name) takes N or LOW..HIGH")
        }
        return low...high
    }

    private mutating func nextRandom() -> UInt64 { random.next() }

    private mutating func unit() -> Double { Double(nextRandom() >> 11) / Double(1 << 53) }

    private mutating func pick(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(nextRandom() % UInt64(range.upperBound - range.lowerBound + 1))
    }

    /// The next connection's fault.
    public mutating func next() -> FaultProxy.Fault {
        var r = unit()
        let choices: [(Double, FaultKind)] = [
            (cutRequest, .cutRequest), (cutResponse, .cutResponse), (stall, .stall), (reset, .reset), (delay, .delay),
            (duplicateRequest, .duplicateRequest), (duplicateResponse, .duplicateResponse),
        ]
        for (p, kind) in choices {
            if r < p {
                switch kind {
                case .cutRequest: return .cutRequest(afterBytes: pick(cutBytes))
                case .cutResponse: return .cutResponse(afterBytes: pick(cutBytes))
                case .stall: return .stall
                case .reset: return .reset
                case .delay: return .delay(milliseconds: pick(delayMilliseconds))
                case .duplicateRequest: return .duplicateRequest(afterMilliseconds: pick(delayMilliseconds))
                case .duplicateResponse: return .duplicateResponse
                }
            }
            r -= p
        }
        return .pass
    }

    private enum FaultKind { case cutRequest, cutResponse, stall, reset, delay, duplicateRequest, duplicateResponse }
}

public struct ProxyError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
