import FaultProxy
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The fault proxy's own behaviour: the seeded plan, HTTP framing, delay, duplicates, partition.
@Suite struct FaultProxyTests {
    @Test func planParsesAndIsDeterministic() throws {
        let spec =
            "seed=42,cut-request=0.1,cut-response=0.1,stall=0.05,reset=0.05,delay=0.1,delay-ms=10..20,duplicate-request=0.05,duplicate-response=0.05"
        var a = try FaultPlan(spec)
        var b = try FaultPlan(spec)
        let first = (0..<500).map { _ in a.next() }
        #expect(first == (0..<500).map { _ in b.next() })
        let kinds = Set(first.map(\.kind))
        #expect(kinds.isSuperset(of: ["pass", "cut-request", "cut-response", "stall", "reset", "delay", "duplicate-request", "duplicate-response"]))
        for case .delay(let ms) in first { #expect((10...20).contains(ms)) }
        var other = try FaultPlan(spec.replacingOccurrences(of: "seed=42", with: "seed=43"))
        #expect((0..<500).map { _ in other.next() } != first)
        var none = try FaultPlan("")
        #expect((0..<50).allSatisfy { _ in none.next() == .pass })
    }

    @Test func planRefusesNonsense() {
        for bad in ["cut-request=2", "bogus=0.1", "seed=-1", "delay-ms=5..1", "cut-request=0.6,reset=0.6", "nonsense"] {
            #expect(throws: ProxyError.self, "\(bad)") { try FaultPlan(bad) }
        }
    }

    @Test func httpFramingFindsTheEndOfTheFirstMessage() {
        let request = Array("POST /v1/push HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".utf8)
        #expect(HTTPFraming.messageLength(request) == request.count)
        #expect(HTTPFraming.messageLength(Array(request.dropLast())) == nil)
        #expect(HTTPFraming.messageLength(request + Array("GET /".utf8)) == request.count)
        let get = Array("GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        #expect(HTTPFraming.messageLength(get) == get.count)
        #expect(HTTPFraming.messageLength(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n".utf8)) == nil)
    }

    /// An upstream that counts requests and answers each with a fixed response.
    final class Upstream: @unchecked Sendable {
        let fd: Int32
        let port: UInt16
        private let lock = NSLock()
        private var received = 0

        init() throws {
            guard let (fd, port) = Loopback.listen(backlog: 16) else { throw TestFailure("cannot listen") }
            self.fd = fd
            self.port = port
            let listener = fd
            Thread.detachNewThread { [self] in
                while true {
                    let client = accept(listener, nil, nil)
                    if client < 0 { return }
                    Thread.detachNewThread { [self] in serve(client) }
                }
            }
        }

        var requests: Int { lock.withLock { received } }

        private func serve(_ client: Int32) {
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while HTTPFraming.messageLength(bytes) == nil {
                let n = recv(client, &buffer, buffer.count, 0)
                if n <= 0 {
                    close(client)
                    return
                }
                bytes += buffer[0..<n]
            }
            lock.withLock { received += 1 }
            let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            _ = answer.withCString { send(client, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            shutdown(client, Int32(SHUT_WR))
            while recv(client, &buffer, buffer.count, 0) > 0 {}
            close(client)
        }

        func stop() {
            shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
        }
    }

    /// Sends one request through the proxy; returns the bytes answered before EOF.
    func exchange(port: UInt16) -> [UInt8] {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { return [] }
        let request = "POST /v1/push HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"
        _ = request.withCString { send(s, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(s, &buffer, buffer.count, 0)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return out
    }

    @Test func faultsDoWhatTheySay() throws {
        let upstream = try Upstream()
        defer { upstream.stop() }
        let proxy = FaultProxy(upstreamPort: Int(upstream.port))
        let port = try proxy.start()
        defer { proxy.stop() }
        let response = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".utf8)

        proxy.plan { _ in .pass }
        #expect(exchange(port: port) == response)
        #expect(upstream.requests == 1)

        proxy.plan { _ in .duplicateResponse }
        #expect(exchange(port: port) == response + response)
        #expect(upstream.requests == 2)

        proxy.plan { _ in .duplicateRequest(afterMilliseconds: 50) }
        #expect(exchange(port: port) == response)
        let deadline = Date().addingTimeInterval(5)
        while upstream.requests < 4 && Date() < deadline { usleep(10_000) }
        #expect(upstream.requests == 4)

        proxy.plan { _ in .delay(milliseconds: 300) }
        let started = Date()
        #expect(exchange(port: port) == response)
        #expect(Date().timeIntervalSince(started) >= 0.3)

        proxy.plan { _ in .cutResponse(afterBytes: 10) }
        #expect(exchange(port: port).count == 10)

        proxy.plan { _ in .reset }
        #expect(exchange(port: port).isEmpty)

        proxy.plan { _ in .pass }
        proxy.partitioned = true
        let before = upstream.requests
        #expect(exchange(port: port).isEmpty)
        #expect(upstream.requests == before)
        proxy.partitioned = false
        #expect(exchange(port: port) == response)
    }
}
