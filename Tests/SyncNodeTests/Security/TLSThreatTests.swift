import ChildProcess
import Foundation
import Testing

/// Issue 23, "not yet tried by anyone": TLS between nodes, through the real binary. Every request
/// and answer is signed by node keys whatever the transport (docs/PROTOCOL.md), so TLS guards what
/// crosses the link from being read; these tests show that a certificate from the wrong key, an
/// expired one, plain HTTP in place of HTTPS and an old TLS version are all refused.
@Suite(.serialized) struct TLSThreatTests {
    /// A CA; two server certificates for 127.0.0.1 that it signed, with different keys (the second
    /// stands for one another CA or an attacker obtained for the same address); one that expired
    /// yesterday.
    private static func certificates(in dir: TempDirectory) throws {
        let script = """
            set -e
            cd "\(dir.url.path)"
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext.cnf
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=syncnode test CA" 2>/dev/null
            for name in server impostor expired; do
                openssl req -newkey rsa:2048 -nodes -keyout $name.key -out $name.csr -subj "/CN=127.0.0.1" 2>/dev/null
            done
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null
            openssl x509 -req -in impostor.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out impostor.pem -days 2 -extfile ext.cnf 2>/dev/null
            openssl x509 -req -in expired.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out expired.pem -days -1 -extfile ext.cnf 2>/dev/null
            """
        let made = try Binary.shell(script)
        guard made.status == 0 else { throw TestFailure("openssl could not make the test certificates: \(made.stderr)") }
    }

    /// HQ and an approved Lintan with one record to send.
    private static func federation(_ dir: TempDirectory) throws -> (hq: String, lintan: String) {
        let hq = dir.path("hq").path
        let lintan = dir.path("lintan").path
        try Federation.hq(hq)
        try Federation.member(lintan, site: "lintan", label: "lintan-office-1", hq: hq)
        #expect(try Binary.run(["record", "put", "--data", lintan, "projects", "lt-school", "name=东丽小学"]).status == 0)
        return (hq, lintan)
    }

    /// `federation`, with HQ served over HTTPS with `name`.pem.
    private static func network(_ dir: TempDirectory, certificate name: String) throws -> (hq: String, lintan: String, serve: ServeProcess) {
        let (hq, lintan) = try federation(dir)
        let serve = try ServeProcess(
            data: hq, extra: ["--tls-cert", dir.path("\(name).pem").path, "--tls-key", dir.path("\(name).key").path, "--every", "1h"])
        return (hq, lintan, serve)
    }

    private static func sync(_ lintan: String, port: Int, _ dir: TempDirectory, _ extra: [String] = []) throws -> Binary.Result {
        try Binary.run(["sync", "--data", lintan, "--peer", "https://127.0.0.1:\(port)", "--ca", dir.path("ca.pem").path] + extra)
    }

    /// The pin `serve` printed when it started with a certificate.
    private static func printedPin(_ serve: ServeProcess) throws -> String {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let log = try String(contentsOf: serve.log, encoding: .utf8)
            if let range = log.range(of: "pin of this server: ") {
                return String(log[range.upperBound...].prefix { !$0.isWhitespace })
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw TestFailure("serve printed no pin: \(try String(contentsOf: serve.log, encoding: .utf8))")
    }

    /// A certificate the trusted CA signed for the right address, but with another key: accepted
    /// by CA checks alone, refused with `--pin` (exit 69, saying what to compare), and nothing of
    /// Lintan's is sent to that server.
    @Test func aPinnedPeerWithAnotherKeyIsRefusedThoughItsCertificateIsValid() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        try Self.certificates(in: dir)
        var (hq, lintan, serve) = try Self.network(dir, certificate: "server")
        let pin = try Self.printedPin(serve)
        #expect(pin.hasPrefix("sha256//") && Data(base64Encoded: String(pin.dropFirst(8)))?.count == 32, "\(pin)")
        let refusedPin = try Self.sync(lintan, port: serve.port, dir, ["--pin", "sha256//" + Data(repeating: 7, count: 32).base64EncodedString()])
        #expect(refusedPin.status == 69, "\(refusedPin.stderr)")
        #expect(refusedPin.stderr.contains("pinned"), "\(refusedPin.stderr)")
        let pinned = try Self.sync(lintan, port: serve.port, dir, ["--pin", pin])
        #expect(pinned.status == 0, "\(pinned.stderr)")
        // Several pins, as a node with two peers gives them.
        let either = try Self.sync(lintan, port: serve.port, dir, ["--pin", "sha256//" + Data(count: 32).base64EncodedString() + ";" + pin])
        #expect(either.status == 0, "\(either.stderr)")
        serve.stop()

        // The same address now answers with the impostor's certificate, valid for the CA.
        #expect(try Binary.run(["record", "put", "--data", lintan, "projects", "lt-clinic", "name=卫生院"]).status == 0)
        serve = try ServeProcess(
            data: hq, extra: ["--tls-cert", dir.path("impostor.pem").path, "--tls-key", dir.path("impostor.key").path, "--every", "1h"])
        defer { serve.stop() }
        let refused = try Self.sync(lintan, port: serve.port, dir, ["--pin", pin])
        #expect(refused.status == 69, "\(refused.stderr)")
        #expect(refused.stderr.contains("not the pinned one"), "\(refused.stderr)")
        let projects = try jsonOutput(["record", "list", "--data", hq, "projects", "--json"]) as? [[String: Any]] ?? []
        #expect(projects.map { $0["id"] as? String } == ["lt-school"], "nothing was sent to a server with another key")

        for bad in ["abc", "sha256//short", "sha1//" + Data(count: 20).base64EncodedString()] {
            let result = try Self.sync(lintan, port: serve.port, dir, ["--pin", bad])
            #expect(result.status == 64, "--pin \(bad): \(result.status)")
            #expect(result.stderr.contains("--pin takes sha256//"), "\(result.stderr)")
        }
    }

    /// `serve` refuses to start with an expired certificate (exit 65, saying when it expired);
    /// a server that still presents one is refused by the client (exit 69).
    @Test func anExpiredCertificateIsRefusedByServeAndByTheClient() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        try Self.certificates(in: dir)
        let (hq, lintan) = try Self.federation(dir)
        let started = try Binary.run([
            "serve", "--data", hq, "--listen", "127.0.0.1:0", "--tls-cert", dir.path("expired.pem").path, "--tls-key", dir.path("expired.key").path,
        ])
        #expect(started.status == 65 && started.stderr.contains("expired at"), "serve started with an expired certificate: \(started.stderr)")

        // Another server presenting the expired certificate (Python's TLS server).
        let portFile = dir.path("python.port").path
        let script = """
            import http.server, ssl, sys
            server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(sys.argv[1], sys.argv[2])
            server.socket = context.wrap_socket(server.socket, server_side=True)
            open(sys.argv[3], "w").write(str(server.server_address[1]))
            server.serve_forever()
            """
        let python = try ChildProcess(
            "/usr/bin/env", ["python3", "-c", script, dir.path("expired.pem").path, dir.path("expired.key").path, portFile], stdin: .null)
        defer {
            python.terminate()
            python.waitUntilExit()
        }
        var port: Int?
        let deadline = Date().addingTimeInterval(20)
        while port == nil && Date() < deadline && python.isRunning {
            port = (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { Int($0) }
            if port == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        let bound = try #require(port, "the Python TLS server did not start")
        let refused = try Self.sync(lintan, port: bound, dir)
        #expect(refused.status == 69, "\(refused.stderr)")
        #expect(refused.stderr.contains("expired"), "\(refused.stderr)")
    }

    /// No downgrade: a sync to an https:// peer never falls back to plain HTTP (the peer serving
    /// plain HTTP is refused, nothing sent), and the server speaks TLS 1.2 or later only.
    @Test func thereIsNoDowngradeToPlainHTTPOrAnOldTLS() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        try Self.certificates(in: dir)
        let (hq, lintan, serve) = try Self.network(dir, certificate: "server")
        defer { serve.stop() }
        let handshake = { (version: String) throws -> Int32 in
            try Binary.shell(
                "openssl s_client -connect 127.0.0.1:\(serve.port) -\(version) -cipher 'DEFAULT:@SECLEVEL=0' -CAfile \(dir.path("ca.pem").path) </dev/null >/dev/null 2>&1"
            ).status
        }
        #expect(try handshake("tls1_2") == 0, "a TLS 1.2 client is served")
        #expect(try handshake("tls1_1") != 0, "a TLS 1.1 handshake was accepted")
        #expect(try handshake("tls1") != 0, "a TLS 1.0 handshake was accepted")
        serve.stop()

        // The peer's address now answers in plain HTTP: the https:// sync is refused, not sent in clear.
        let plain = try ServeProcess(data: hq, extra: ["--every", "1h"])
        defer { plain.stop() }
        let refused = try Self.sync(lintan, port: plain.port, dir)
        #expect(refused.status == 69, "\(refused.stderr)")
        #expect(refused.stderr.contains("TLS"), "\(refused.stderr)")
        let projects = try jsonOutput(["record", "list", "--data", hq, "projects", "--json"]) as? [[String: Any]] ?? []
        #expect(projects.isEmpty, "Lintan's work went to the peer without TLS")
    }
}
