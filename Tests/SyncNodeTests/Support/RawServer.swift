import FaultProxy
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A one-purpose HTTP listener on 127.0.0.1 for client tests: it records the request head and
/// then answers, stays silent, or stalls half-way through a body.
final class RawServer: @unchecked Sendable {
    enum Mode {
        case reply(String)
        case silent
        case stallAfter(String)
    }

    let mode: Mode
    private(set) var port: UInt16 = 0
    private var fd: Int32 = -1
    private let lock = NSLock()
    private var heads: [String] = []
    private var clients: [Int32] = []

    init(_ mode: Mode) throws {
        self.mode = mode
        guard let (fd, port) = Loopback.listen(backlog: 16) else { throw TestFailure("cannot listen") }
        self.fd = fd
        self.port = port
        let listener = fd
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 {
                    close(listener)
                    return
                }
                lock.withLock { clients.append(client) }
                Thread.detachNewThread { [self] in serve(client) }
            }
        }
    }

    var requestHeads: [String] { lock.withLock { heads } }

    private func serve(_ client: Int32) {
        defer { closeOnce(client) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            received += buffer[0..<n]
            if let end = String(decoding: received, as: UTF8.self).range(of: "\r\n\r\n") {
                let head = String(String(decoding: received, as: UTF8.self)[..<end.lowerBound])
                lock.withLock { heads.append(head) }
                break
            }
        }
        switch mode {
        case .reply(let text):
            // Drain the body the head announced, then answer.
            _ = text.withCString { send(client, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            Thread.sleep(forTimeInterval: 0.2)
            closeOnce(client)
        case .silent:
            while recv(client, &buffer, buffer.count, 0) > 0 {}
        case .stallAfter(let text):
            _ = text.withCString { send(client, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            while recv(client, &buffer, buffer.count, 0) > 0 {}
        }
    }

    /// Closes a descriptor only if this server still owns it: a number closed twice may by then
    /// belong to another test's database file.
    private func closeOnce(_ s: Int32) {
        lock.withLock {
            if let i = clients.firstIndex(of: s) {
                clients.remove(at: i)
                shutdown(s, Int32(SHUT_RDWR))
                close(s)
            }
        }
    }

    /// Shuts every socket down; the threads that own them close them, each exactly once.
    func stop() {
        lock.withLock {
            for s in clients + [fd] where s >= 0 { shutdown(s, Int32(SHUT_RDWR)) }
        }
    }
}
