import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP proxy on loopback that forwards connections to an upstream port and injects faults per
/// connection: cut the request or the response after some bytes, or stall. For tests and the
/// fault harness; it only ever listens on and connects to 127.0.0.1.
public final class FaultProxy: @unchecked Sendable {
    public enum Fault: Sendable, Equatable {
        case pass
        /// Close both sides once this many request bytes have been forwarded.
        case cutRequest(afterBytes: Int)
        /// Close both sides once this many response bytes have been forwarded.
        case cutResponse(afterBytes: Int)
        /// Accept, then forward nothing until closed.
        case stall
        /// Refuse: close the connection at once.
        case reset
    }

    private let upstreamPort: UInt16
    private let lock = NSLock()
    private var listener: Int32 = -1
    private var planFunction: @Sendable (Int) -> Fault = { _ in .pass }
    private var connectionCount = 0
    private var openSockets: Set<Int32> = []
    public private(set) var port: UInt16 = 0

    public init(upstreamPort: Int) {
        self.upstreamPort = UInt16(upstreamPort)
    }

    /// Decides the fault for each connection, numbered from 1.
    public func plan(_ function: @escaping @Sendable (Int) -> Fault) {
        lock.withLock { planFunction = function }
    }

    /// Connections accepted so far.
    public var connections: Int { lock.withLock { connectionCount } }

    /// Starts listening on 127.0.0.1 at a free port; returns the port.
    @discardableResult
    public func start() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProxyError("socket() failed") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw ProxyError("cannot listen on 127.0.0.1")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = UInt16(bigEndian: actual.sin_port)
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
            let (number, fault) = lock.withLock { () -> (Int, Fault) in
                connectionCount += 1
                openSockets.insert(client)
                return (connectionCount, planFunction(connectionCount))
            }
            _ = number
            Thread.detachNewThread { [self] in handle(client, fault) }
        }
    }

    private func handle(_ client: Int32, _ fault: Fault) {
        if fault == .reset {
            closeAll([client])
            return
        }
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        lock.withLock { _ = openSockets.insert(upstream) }
        var address = Self.loopback(port: upstreamPort)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            closeAll([client, upstream])
            return
        }
        if fault == .stall {
            // Hold the connection open without forwarding anything until the proxy stops.
            var byte: UInt8 = 0
            while recv(client, &byte, 1, 0) > 0 {}
            closeAll([client, upstream])
            return
        }
        var limits = (request: Int.max, response: Int.max)
        if case .cutRequest(let n) = fault { limits.request = n }
        if case .cutResponse(let n) = fault { limits.response = n }
        let (requestLimit, responseLimit) = limits
        let done = DispatchGroup()
        done.enter()
        Thread.detachNewThread { [self] in
            pump(from: client, to: upstream, limit: requestLimit)
            done.leave()
        }
        pump(from: upstream, to: client, limit: responseLimit)
        done.wait()
        closeAll([client, upstream])
    }

    /// Copies bytes until EOF or the limit; at the limit (a fault) closes both sockets.
    private func pump(from source: Int32, to target: Int32, limit: Int) {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        var total = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            if n <= 0 {
                shutdown(target, Int32(SHUT_WR))
                return
            }
            let allowed = min(n, limit - total)
            var sent = 0
            while sent < allowed {
                let m = buffer.withUnsafeBytes { send(target, $0.baseAddress! + sent, allowed - sent, Int32(MSG_NOSIGNAL)) }
                if m <= 0 { break }
                sent += m
            }
            total += allowed
            if total >= limit {
                // The fault: cut both directions. The sockets are closed once both pumps end.
                shutdown(source, Int32(SHUT_RDWR))
                shutdown(target, Int32(SHUT_RDWR))
                return
            }
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

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}

public struct ProxyError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
