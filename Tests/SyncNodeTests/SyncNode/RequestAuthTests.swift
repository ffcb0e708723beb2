import ChildProcess
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import ServiceLifecycle
import SyncNode
import SyncProtocol
import Testing

/// Requests are signed by the calling node; HQ refuses unknown, revoked, stale, forged and replayed ones.
@Suite struct RequestAuthTests {
    private func fields(_ headers: [String: String]) -> HTTPFields {
        var out = HTTPFields()
        for (name, value) in headers { out[HTTPField.Name(name)!] = value }
        return out
    }

    private func expectStatus(
        _ hq: TestNode, _ headers: [HTTPFields], _ statuses: [HTTPResponse.Status], _ codes: [String?]
    ) async throws {
        let app = Application(router: NodeServer.router(service: SyncService(store: hq.store), logger: Logger(label: "test")))
        try await app.test(.router) { client in
            for (i, h) in headers.enumerated() {
                try await client.execute(uri: "/v1/status", method: .get, headers: h) { response in
                    #expect(response.status == statuses[i], "request \(i + 1): \(String(buffer: response.body))")
                    if let code = codes[i] {
                        let envelope = try WireCodec.decodeMessage(ErrorEnvelope.self, from: Array(response.body.readableBytesView))
                        #expect(envelope.error.code == code)
                    }
                }
            }
        }
    }

    @Test func approvedNodeIsServedAndAReplayIsRefused() async throws {
        let f = try StoreFederation()
        defer { f.remove() }
        let signed = fields(f.lintan.store.requestSigner.headers(method: "GET", path: "/v1/status", body: []))
        try await expectStatus(f.hq, [signed, signed], [.ok, .unauthorized], [nil, "replayed_request"])
    }

    @Test func unsignedUnknownForgedAndStaleRequestsAreRefused() async throws {
        let f = try StoreFederation()
        defer { f.remove() }
        let stranger = try TestNode(site: "lintan", label: "stranger", role: .county, trust: .anchor(f.hq.store.info.publicKey))
        defer { stranger.remove() }
        let unknown = fields(stranger.store.requestSigner.headers(method: "GET", path: "/v1/status", body: []))
        var forged = f.lintan.store.requestSigner.headers(method: "GET", path: "/v1/status", body: [])
        forged["Syncnode-Signature"] = stranger.store.requestSigner.headers(method: "GET", path: "/v1/status", body: [])["Syncnode-Signature"]
        let otherPath = f.lintan.store.requestSigner.headers(method: "GET", path: "/v1/pull", body: [])
        f.lintan.clock.advance(by: 3_600_000)
        let stale = fields(f.lintan.store.requestSigner.headers(method: "GET", path: "/v1/status", body: []))
        try await expectStatus(
            f.hq, [HTTPFields(), unknown, fields(forged), fields(otherPath), stale],
            [.unauthorized, .unauthorized, .unauthorized, .unauthorized, .unauthorized],
            ["unauthenticated", "unknown_node", "bad_signature", "bad_signature", "stale_request"])
    }

    @Test func revokedNodeIsForbidden() async throws {
        let f = try StoreFederation()
        defer { f.remove() }
        try f.hq.store.commit([.revoke(node: f.gangu.store.info.nodeID)])
        let signed = fields(f.gangu.store.requestSigner.headers(method: "GET", path: "/v1/status", body: []))
        try await expectStatus(f.hq, [signed], [.forbidden], ["revoked_node"])
    }

    @Test func signedSyncOverRealHTTPWorksAndAnUnapprovedNodeIsTold() async throws {
        let f = try StoreFederation()
        defer { f.remove() }
        try f.lintan.store.commit([.put(collection: "projects", recordID: "lt-clinic", fields: [.init("name", .text("东丽卫生院"))])])
        let stranger = try TestNode(site: "lintan", label: "stranger", role: .county, trust: .anchor(f.hq.store.info.publicKey))
        defer { stranger.remove() }
        let app = Application(router: NodeServer.router(service: SyncService(store: f.hq.store), logger: Logger(label: "test")))
        try await app.testLive { client in
            let url = "http://127.0.0.1:\(try #require(client.port))"
            let ok = try await Syncer(store: f.lintan.store, transport: HTTPTransport(baseURL: url, signer: f.lintan.store.requestSigner)).run()
            #expect(ok.sent == 1)
            do {
                _ = try await Syncer(store: stranger.store, transport: HTTPTransport(baseURL: url, signer: stranger.store.requestSigner)).run()
                Issue.record("an unapproved node synced")
            } catch let error as SyncNodeError {
                #expect(error.code == .peerRefused)
                #expect(error.message.contains("HQ must approve it"), "\(error.message)")
            }
        }
        #expect(try f.hq.store.record("projects", "lt-clinic") != nil)
    }
}

/// HTTPS with a test CA made by openssl: the client verifies certificates by default.
@Suite struct TLSTests {
    private func openssl(_ arguments: [String], in dir: URL) throws {
        // In `dir`: the arguments name their files relative to it.
        let script = "cd \"$0\" && exec /usr/bin/openssl \"$@\""
        let result = try ChildProcess.run("/bin/sh", ["-c", script, dir.path] + arguments)
        guard result.status == 0 else { throw TestFailure("openssl \(arguments.first ?? "") failed") }
    }

    private func tlsFailure(_ options: HTTPClientOptions, _ url: String) async -> SyncNodeError? {
        do {
            _ = try await CurlClient(options: options).send(method: "GET", url: url)
            return nil
        } catch {
            return error
        }
    }

    /// A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA.
    private func makeCertificates(in dir: URL) throws {
        try openssl(
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=syncnode test CA"],
            in: dir)
        try openssl(
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.pem", "-days", "2", "-subj", "/CN=other CA"],
            in: dir)
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"], in: dir)
        try Data("subjectAltName=IP:127.0.0.1,DNS:localhost\n".utf8).write(to: dir.appendingPathComponent("ext.cnf"))
        try openssl(
            [
                "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2",
                "-extfile", "ext.cnf",
            ],
            in: dir)
    }

    @Test func clientAcceptsTheRightCertificateAndRefusesAWrongOne() async throws {
        let hq = try TestNode(site: "hq", label: "dongli-hq", role: .hq, trust: .hq)
        defer { hq.remove() }
        let dir = hq.directory.url
        try makeCertificates(in: dir)
        var logger = Logger(label: "tls-test")
        logger.logLevel = .error
        let ready = AsyncStream<Int>.makeStream()
        let app = try NodeServer.application(
            service: SyncService(store: hq.store), host: "127.0.0.1", port: 0,
            tls: NodeServer.TLSFiles(
                certificate: dir.appendingPathComponent("server.pem").path, privateKey: dir.appendingPathComponent("server.key").path),
            logger: logger
        ) { port in ready.continuation.yield(port) }
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
        let server = Task(executorPreference: ServerThreads.shared) { try await group.run() }
        var ports = ready.stream.makeAsyncIterator()
        let port = try #require(await ports.next())
        let url = "https://127.0.0.1:\(port)/health"

        var right = HTTPClientOptions()
        right.caFile = dir.appendingPathComponent("ca.pem").path
        let answer = try await CurlClient(options: right).send(method: "GET", url: url)
        #expect(answer.status == 200)
        #expect(String(decoding: answer.body, as: UTF8.self).contains("dongli-hq"))

        var wrong = HTTPClientOptions()
        wrong.caFile = dir.appendingPathComponent("other.pem").path
        for options in [wrong, HTTPClientOptions()] {
            let refusal = await tlsFailure(options, url)
            #expect(refusal?.code == .unreachable, "a certificate from an untrusted CA was accepted")
            #expect(refusal?.message.contains("TLS") == true)
        }
        await group.triggerGracefulShutdown()
        _ = try? await server.value
    }
}
