import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One HTTP/1.1 request to a server on 127.0.0.1 from a chosen loopback address: the socket is
/// bound to that source address (127.0.0.2, 127.0.0.3, …) before it connects, so the server sees
/// it as the client's address, as it would see another machine's. Linux routes all of 127.0.0.0/8
/// to the loopback interface: nothing has to be set up.
enum LoopbackHTTP {
    struct Response {
        var status: Int
        var headers: [(String, String)]
        var body: String

        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }

        /// The cookie a login set, as a `Cookie` header value.
        var cookie: String? { header("Set-Cookie").map { String($0.split(separator: ";")[0]) } }

        var retryAfter: Int? { header("Retry-After").flatMap { Int($0) } }
    }

    /// `method path` from `source` to 127.0.0.1:`port`; a `form` is posted urlencoded with this
    /// node's own `Origin` (as its pages' forms are).
    static func request(
        from source: String, port: Int, _ method: String, _ path: String, cookie: String? = nil, form: [(String, String)]? = nil
    ) throws -> Response {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw TestFailure("cannot bind to \(source) (errno \(errno))") }
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(port).bigEndian)
        remote.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestFailure("cannot connect from \(source) to port \(port) (errno \(errno))") }

        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if let cookie { head += "Cookie: \(cookie)\r\n" }
        var body = ""
        if let form {
            body = form.map { "\(encode($0.0))=\(encode($0.1))" }.joined(separator: "&")
            head += "Origin: http://127.0.0.1:\(port)\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        }
        head += "Content-Length: \(body.utf8.count)\r\n\r\n"
        let bytes = Array((head + body).utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestFailure("send from \(source): errno \(errno)") }
            sent += n
        }

        // Until the server closes, or the head and as many body bytes as it announced have come.
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            if let response = parse(received) { return response }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 { throw TestFailure("no answer from port \(port) to \(source) (errno \(errno))") }
            if n == 0 { break }
            received += buffer[0..<n]
        }
        guard let response = parse(received, complete: true) else {
            throw TestFailure("not an HTTP response: \(String(decoding: received.prefix(200), as: UTF8.self))")
        }
        return response
    }

    static func encode(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }

    /// The response in `bytes`, once its head and its `Content-Length` of body are there (or,
    /// when `complete`, whatever body came before the connection closed).
    private static func parse(_ bytes: [UInt8], complete: Bool = false) -> Response? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, bytes.count - 3)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else { return nil }
        let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { return nil }
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let body = Array(bytes[(end + 4)...])
        if let length = headers.first(where: { $0.0.lowercased() == "content-length" }).flatMap({ Int($0.1) }) {
            guard body.count >= length else { return nil }
            return Response(status: status, headers: headers, body: String(decoding: body.prefix(length), as: UTF8.self))
        }
        guard complete else { return nil }
        let chunked = headers.contains { $0.0.lowercased() == "transfer-encoding" && $0.1.lowercased().contains("chunked") }
        return Response(status: status, headers: headers, body: String(decoding: chunked ? dechunk(body) : body, as: UTF8.self))
    }

    private static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            guard let lineEnd = (i..<max(i, bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }),
                let size = Int(String(decoding: bytes[i..<lineEnd], as: UTF8.self).split(separator: ";").first ?? "", radix: 16), size > 0
            else { break }
            let start = lineEnd + 2
            out += bytes[start..<min(bytes.count, start + size)]
            i = start + size + 2
        }
        return out
    }
}
