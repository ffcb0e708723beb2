import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SyncNode
import SyncProtocol
import Testing

/// The HTTP API, called in process (router tests) and over real HTTP with the libcurl client.
@Suite struct ServerTests {
    private func app(_ store: Store, maxBody: Int = 1 << 20) -> some ApplicationProtocol {
        var limits = ServiceLimits()
        limits.maxBodyBytes = maxBody
        return Application(router: NodeServer.router(service: SyncService(store: store, limits: limits), logger: Logger(label: "test")))
    }

    private func batch(_ transactions: [ReceivedTransaction], from origin: NodeID, count: Int? = nil) throws -> [UInt8] {
        let header = BatchHeader(
            from: PeerIdentity(node: origin, site: "lintan", label: "l"), count: count ?? transactions.count, more: false, clock: 1_700_000_000_000)
        return BatchCodec.encode(header: try WireCodec.encodeMessage(header), frames: transactions.map(\.frame))
    }

    /// Sends a bad request and checks the status, the error code, and that nothing was written.
    private func expectRefused(
        _ store: Store, maxBody: Int = 1 << 20, uri: String, headers: HTTPFields = [:], body: [UInt8], status: HTTPResponse.Status, code: String
    ) async throws {
        let before = try store.storedDigest()
        try await app(store, maxBody: maxBody).test(.router) { client in
            try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(bytes: body)) { response in
                #expect(response.status == status, "\(uri): \(String(buffer: response.body))")
                let envelope = try WireCodec.decodeMessage(ErrorEnvelope.self, from: Array(response.body.readableBytesView))
                #expect(envelope.error.code == code)
                #expect(!envelope.error.message.isEmpty)
            }
        }
        #expect(try store.storedDigest() == before)
    }

    @Test func statusAndHealthAnswer() async throws {
        let node = try TestNode(site: "hq", label: "dongli-hq")
        defer { node.remove() }
        try await app(node.store).test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("dongli-hq"))
            }
            try await client.execute(uri: "/v1/status", method: .get) { response in
                let status = try WireCodec.decodeMessage(StatusMessage.self, from: Array(response.body.readableBytesView))
                #expect(status.identity.node == node.store.info.nodeID)
                #expect(status.protocolVersion == WireCodec.protocolVersion)
                #expect(status.clock == 1_700_000_000_000)
            }
        }
    }

    @Test func malformedJSONIsRefused() async throws {
        let node = try TestNode(site: "hq")
        defer { node.remove() }
        try await expectRefused(node.store, uri: "/v1/pull", body: Array("{not json".utf8), status: .badRequest, code: "malformed")
        try await expectRefused(node.store, uri: "/v1/push", body: Array("{not json\n".utf8), status: .badRequest, code: "malformed")
    }

    @Test func wrongTypesAreRefused() async throws {
        let node = try TestNode(site: "hq")
        defer { node.remove() }
        let pull = #"{"protocolVersion":"one","from":{},"vector":[],"maxTransactions":"many","maxBytes":1}"#
        try await expectRefused(node.store, uri: "/v1/pull", body: Array(pull.utf8), status: .badRequest, code: "malformed")
        let origin = NodeID(high: 7, low: 7)
        let t = Transaction(
            origin: origin, seq: 1, hlc: Timestamp(millis: 1_700_000_000_000, counter: 0, node: origin),
            changes: [.set(FieldWrite(collection: "c", recordID: "r", field: "f", value: .int(1)))])
        var body = WireCodec.encode(t)
        body = Array(String(decoding: body, as: UTF8.self).replacingOccurrences(of: "\"s\":1", with: "\"s\":\"first\"").utf8)
        let push = try batch([ReceivedTransaction(transaction: t, body: body)], from: origin)
        try await expectRefused(node.store, uri: "/v1/push", body: push, status: .badRequest, code: "malformed")
    }

    @Test func truncatedGzipIsRefused() async throws {
        let node = try TestNode(site: "hq")
        let county = try TestNode()
        defer {
            node.remove()
            county.remove()
        }
        try county.store.commit([.put(collection: "c", recordID: "r", fields: [.init("f", .text(String(repeating: "临潭", count: 200)))])])
        let push = try batch(try county.store.transactions(missingFrom: VersionVector()).transactions, from: county.store.info.nodeID)
        let gz = Gzip.compress(push)
        try await expectRefused(
            node.store, uri: "/v1/push", headers: [.contentEncoding: "gzip"], body: Array(gz.prefix(gz.count / 2)), status: .badRequest,
            code: "bad_encoding")
        try await expectRefused(
            node.store, uri: "/v1/push", headers: [.contentEncoding: "br"], body: push, status: .unsupportedMediaType, code: "unsupported_encoding")
    }

    @Test func oversizedBodyIsRefusedWith413() async throws {
        let node = try TestNode(site: "hq")
        defer { node.remove() }
        let big = [UInt8](repeating: 0x41, count: 5000)
        try await expectRefused(node.store, maxBody: 1000, uri: "/v1/push", body: big, status: .contentTooLarge, code: "body_too_large")
        // A small gzip body that inflates past the limit is refused too.
        try await expectRefused(
            node.store, maxBody: 1000, uri: "/v1/push", headers: [.contentEncoding: "gzip"], body: Gzip.compress(big), status: .contentTooLarge,
            code: "body_too_large")
    }

    /// The bound is exact: CompressNIO's let 300 KiB out under a 260 KiB bound (its buffer is
    /// rounded up), so a body could inflate to about twice what the node accepts.
    @Test func gzipIsInflatedNoFurtherThanItsBound() throws {
        let data = [UInt8](repeating: 7, count: 300 * 1024)
        let compressed = Gzip.compress(data)
        #expect(throws: SyncNodeError.self) { try Gzip.decompress(compressed, maxSize: 260 * 1024) }
        #expect(try Gzip.decompress(compressed, maxSize: 300 * 1024) == data)
        #expect(throws: SyncNodeError.self) { try Gzip.decompress(compressed + [0], maxSize: 1 << 20) }
        #expect(throws: SyncNodeError.self) { try Gzip.decompress(Array(compressed.dropLast(4)), maxSize: 1 << 20) }
        #expect(throws: SyncNodeError.self) { try Gzip.decompress([], maxSize: 1 << 20) }
    }

    @Test func unknownProtocolVersionIsRefused() async throws {
        let node = try TestNode(site: "hq")
        defer { node.remove() }
        try await expectRefused(node.store, uri: "/v2/push", body: [], status: .notFound, code: "unsupported_protocol")
        let me = PeerIdentity(node: NodeID(high: 1, low: 1), site: "x", label: "x")
        let pull = try WireCodec.encodeMessage(
            PullRequest(protocolVersion: 99, from: me, vector: VersionVector(), maxTransactions: 10, maxBytes: 100))
        try await expectRefused(node.store, uri: "/v1/pull", body: pull, status: .badRequest, code: "unsupported_protocol")
    }

    @Test func aGapInSeqIsRefusedAndNothingIsWritten() async throws {
        let node = try TestNode(site: "hq")
        let county = try TestNode()
        defer {
            node.remove()
            county.remove()
        }
        for i in 0..<3 { try county.store.commit([.put(collection: "c", recordID: "r\(i)", fields: [.init("f", .int(1))])]) }
        var transactions = try county.store.transactions(missingFrom: VersionVector()).transactions
        transactions.remove(at: 1)
        try await expectRefused(
            node.store, uri: "/v1/push", body: try batch(transactions, from: county.store.info.nodeID), status: .unprocessableContent,
            code: "protocol_violation")
        let all = try county.store.transactions(missingFrom: VersionVector()).transactions
        try await expectRefused(
            node.store, uri: "/v1/push", body: try batch(all, from: county.store.info.nodeID, count: 5), status: .badRequest, code: "malformed")
    }

    @Test func syncOverRealHTTPWithLibcurlConverges() async throws {
        let hq = try TestNode(site: "hq", label: "dongli-hq")
        let county = try TestNode()
        defer {
            hq.remove()
            county.remove()
        }
        // Large enough that bodies exceed 1 MiB (where curl would otherwise send Expect: 100-continue).
        for i in 0..<40 {
            try county.store.commit([
                .put(collection: "c", recordID: "r\(i)", fields: [.init("text", .text(String(repeating: "\(i)东丽", count: 5000)))])
            ])
        }
        try hq.store.commit([.put(collection: "c", recordID: "from-hq", fields: [.init("f", .int(1))])])
        try await app(hq.store, maxBody: 64 << 20).testLive { client in
            let port = try #require(client.port)
            let syncer = Syncer(store: county.store, transport: HTTPTransport(baseURL: "http://127.0.0.1:\(port)"))
            let summary = try await syncer.run()
            #expect(summary.sent == 40)
            #expect(summary.received == 1)
            #expect(summary.wireBytes < 40 * 5000 * 8 / 10)  // gzip works on the wire
        }
        #expect(try hq.store.stateDigest() == county.store.stateDigest())
    }

    @Test func clientSendsNoExpectHeaderAndGzipsTheBody() async throws {
        let server = try RawServer(.reply("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"))
        defer { server.stop() }
        // Incompressible, so the gzip body sent stays over 1 MiB, where curl would add Expect.
        var rng = SystemRandomNumberGenerator()
        let body = (0..<(2 << 20)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let result = try await CurlClient().send(method: "POST", url: "http://127.0.0.1:\(server.port)/v1/push", body: body)
        #expect(result.status == 200)
        #expect(result.body == Array("ok".utf8))
        let head = try #require(server.requestHeads.first).lowercased()
        #expect(!head.contains("expect:"))
        #expect(head.contains("content-encoding: gzip"))
        #expect(result.bytesSent > 1 << 20)
    }

    @Test func refusedConnectionIsAClearError() async throws {
        let server = try RawServer(.silent)
        let port = server.port
        server.stop()
        do {
            _ = try await HTTPTransport(baseURL: "http://127.0.0.1:\(port)").status()
            Issue.record("a closed port answered")
        } catch {
            #expect(error.code == .unreachable)
            #expect(error.message.contains("cannot connect"))
            #expect(error.exitCode == 69)
        }
    }

    @Test func silentPeerTimesOutWithinTheConfiguredTimeout() async throws {
        let server = try RawServer(.silent)
        defer { server.stop() }
        var options = HTTPClientOptions()
        options.timeoutSeconds = 1
        let started = Date()
        do {
            _ = try await HTTPTransport(baseURL: "http://127.0.0.1:\(server.port)", client: CurlClient(options: options)).status()
            Issue.record("a silent peer answered")
        } catch {
            #expect(error.code == .unreachable)
            #expect(error.message.contains("in time"))
            // libcurl says how long it waited: the configured 1 s, not the 60 s default. (The
            // wall clock around the await also counts the wait for a free cooperative thread,
            // which the tests running in parallel can make long.)
            let waited = error.message.firstMatch(of: /after (\d+) milliseconds/).flatMap { Int($0.1) }
            #expect(waited.map { $0 < 5_000 } ?? false, "\(error.message)")
        }
        #expect(Date().timeIntervalSince(started) < 300)
    }

    @Test func stalledTransferIsAbortedWithinTheStallLimit() async throws {
        let server = try RawServer(.stallAfter("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{\"partial\":"))
        defer { server.stop() }
        var options = HTTPClientOptions()
        options.lowSpeedSeconds = 1
        options.timeoutSeconds = 120
        let started = Date()
        do {
            _ = try await HTTPTransport(baseURL: "http://127.0.0.1:\(server.port)", client: CurlClient(options: options)).status()
            Issue.record("a stalled transfer completed")
        } catch {
            #expect(error.code == .unreachable)
            // The stall detector fired, not the 120 s overall timeout (libcurl's own words; the
            // wall clock around the await also counts the wait for a free cooperative thread).
            #expect(error.message.contains("stalled") && !error.message.contains("after 120"), "\(error.message)")
        }
        #expect(Date().timeIntervalSince(started) < 300)
    }
}
