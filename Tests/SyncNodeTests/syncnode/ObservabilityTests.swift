import Foundation
import GRDB
import Logging
import SyncProtocol
import Testing

@testable import SyncNode

/// What an operator watches: `/metrics` scraped from real `serve` processes and read as
/// Prometheus text, the log lines (request ids shared by both ends of a round, quiet when idle, a
/// line at shutdown), and progress with totals on long work.
@Suite struct ObservabilityTests {
    static func scrape(_ url: String) async throws -> PrometheusText {
        let answer = try await CurlClient().send(method: "GET", url: url + "/metrics")
        guard answer.status == 200 else { throw TestFailure("GET /metrics answered \(answer.status)") }
        #expect(answer.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        return try PrometheusText(String(decoding: answer.body, as: UTF8.self))
    }

    /// Scrapes every 200 ms until `condition` holds, at most 30 s.
    static func scrape(_ url: String, until condition: (PrometheusText) -> Bool) async throws -> PrometheusText {
        let deadline = Date().addingTimeInterval(30)
        while true {
            let metrics = try await scrape(url)
            if condition(metrics) { return metrics }
            guard Date() < deadline else { throw TestFailure("the metrics of \(url) never reached the expected state:\n\(metrics.samples)") }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Each line as an object, its numbers and flags shown as text (`typedFields` checks their types).
    static func jsonLines(_ file: URL) throws -> [[String: String]] {
        try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw TestFailure("a log line is not a JSON object: \(line)")
            }
            return object.mapValues { value in (value as? String) ?? (value as? NSNumber)?.stringValue ?? "\(value)" }
        }
    }

    /// The fields of the lines of `file` that hold a JSON number (not a string).
    static func numericFields(_ file: URL) throws -> Set<String> {
        var out = Set<String>()
        for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            for (key, value) in object where value is NSNumber && !(value is String) { out.insert(key) }
        }
        return out
    }

    @Test func metricsOfServingNodesAreValidPrometheusTextAndMoveAndLogsTellTheRoundsApart() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (hq, lintan) = try Federation.hqAndLintan(in: dir)
        let hqServer = try ServeProcess(data: hq, extra: ["--log-format", "json"])
        defer { hqServer.stop() }
        #expect(try await Binary.runAsync(["peer", "add", "--data", lintan, hqServer.url]).status == 0)
        // Lintan syncs at its start and then at once after each local write (the interval is long:
        // HQ's own write below must not reach it before Lintan writes the same field).
        let lintanServer = try ServeProcess(data: lintan, extra: ["--every", "1h"], environment: ["SYNCNODE_LOG_FORMAT": "json"])
        defer { lintanServer.stop() }

        let before = try await Self.scrape(lintanServer.url) { $0.total("syncnode_sync_rounds_total", ["outcome": "ok"]) >= 1 }
        let hqBefore = try await Self.scrape(hqServer.url) { $0.has("syncnode_node_last_heard_timestamp_seconds") }
        for name in [
            "syncnode_build_info", "syncnode_conflicts_open", "syncnode_transactions_held", "syncnode_transactions", "syncnode_sync_rounds_total",
            "syncnode_sync_round_duration_seconds_count", "syncnode_sync_round_duration_seconds_bucket", "syncnode_sync_bytes_total",
            "syncnode_transactions_applied_total", "syncnode_transactions_sent_total", "syncnode_transactions_refused_total",
            "syncnode_peer_last_success_timestamp_seconds", "syncnode_peer_unsent_transactions",
        ] {
            #expect(before.has(name), "Lintan lacks \(name)")
        }
        for name in [
            "syncnode_build_info", "syncnode_node_last_heard_timestamp_seconds", "syncnode_node_unsent_transactions", "syncnode_http_requests_total",
            "syncnode_http_request_duration_seconds_count", "syncnode_http_bytes_total", "syncnode_conflicts_open", "syncnode_transactions_held",
        ] {
            #expect(hqBefore.has(name), "HQ lacks \(name)")
        }
        #expect(before.value("syncnode_build_info", ["protocol": String(WireCodec.protocolVersion), "schema": String(Store.schemaVersion)]) == 1)
        #expect(before.value("syncnode_conflicts_open") == 0)
        #expect(before.total("syncnode_transactions_sent_total") == 0)
        #expect(hqBefore.total("syncnode_transactions_applied_total", ["via": "push"]) == 0)
        let lintanID = try #require(Federation.identity(lintan)["node"] as? String)
        let heardBefore = try #require(hqBefore.value("syncnode_node_last_heard_timestamp_seconds", ["node": lintanID, "label": "lintan-1"]))

        // HQ writes a field, then Lintan writes the same field (neither has seen the other) and two
        // more projects: Lintan's next round sends 3 and receives HQ's, and both hold a conflict.
        try await Task.sleep(for: .milliseconds(1100))
        #expect(try await Binary.runAsync(["record", "put", "--data", hq, "projects", "lt-clinic", "stage=hq-says"]).status == 0)
        for (id, stage) in [("lt-clinic", "lintan-says"), ("lt-school", "built"), ("lt-dorm", "planned")] {
            #expect(try await Binary.runAsync(["record", "put", "--data", lintan, "projects", id, "stage=\(stage)"]).status == 0)
        }
        let after = try await Self.scrape(lintanServer.url) {
            $0.total("syncnode_transactions_sent_total") >= 3 && $0.total("syncnode_transactions_applied_total", ["via": "pull"]) > 0
                && $0.value("syncnode_conflicts_open") == 1
                && $0.value("syncnode_peer_unsent_transactions") == 0
        }
        let hqAfter = try await Self.scrape(hqServer.url) {
            $0.total("syncnode_transactions_applied_total", ["via": "push"]) >= 3 && $0.value("syncnode_conflicts_open") == 1
        }
        #expect(after.total("syncnode_sync_rounds_total", ["outcome": "ok"]) > before.total("syncnode_sync_rounds_total", ["outcome": "ok"]))
        #expect(after.total("syncnode_sync_round_duration_seconds_count") > before.total("syncnode_sync_round_duration_seconds_count"))
        #expect(after.total("syncnode_sync_bytes_total") > before.total("syncnode_sync_bytes_total"))
        #expect(
            try #require(after.value("syncnode_peer_last_success_timestamp_seconds"))
                > before.value("syncnode_peer_last_success_timestamp_seconds") ?? .infinity)
        #expect(after.value("syncnode_transactions") ?? 0 > before.value("syncnode_transactions") ?? .infinity)
        #expect(try #require(hqAfter.value("syncnode_node_last_heard_timestamp_seconds", ["node": lintanID])) > heardBefore)
        #expect(hqAfter.value("syncnode_node_unsent_transactions", ["node": lintanID]) == 0)
        #expect(hqAfter.total("syncnode_http_requests_total", ["route": "/v1/push", "status": "200"]) >= 1)
        #expect(hqAfter.total("syncnode_http_bytes_total", ["direction": "in"]) > hqBefore.total("syncnode_http_bytes_total", ["direction": "in"]))
        #expect(hqAfter.value("syncnode_transactions_held") == 0)

        // Nothing more to exchange: HQ is quiet at the default level while Lintan keeps polling.
        try await Task.sleep(for: .milliseconds(1500))
        #expect(hqServer.stop() == 0)
        #expect(lintanServer.stop() == 0)
        let hqLines = try Self.jsonLines(hqServer.log)
        let lintanLines = try Self.jsonLines(lintanServer.log)
        for line in hqLines + lintanLines {
            #expect(line["time"]?.hasSuffix("Z") == true && line["level"] != nil && line["message"] != nil, "\(line)")
        }
        // A round that sent work: its id is on Lintan's line and on HQ's line for the push.
        let sending = lintanLines.filter { $0["message"] == "sync round finished" && ($0["sync.sent"].flatMap(Int.init) ?? 0) > 0 }
        #expect(!sending.isEmpty, "\(lintanLines)")
        let pushes = hqLines.filter { $0["message"] == "POST /v1/push 200" }
        #expect(!pushes.isEmpty && pushes.allSatisfy { push in sending.contains { $0["sync.round"] == push["request.id"] } }, "\(pushes) \(sending)")
        // The id is the caller's word; the line also names the node whose signature it carried.
        #expect(pushes.allSatisfy { $0["caller.node"] == lintanID }, "\(pushes)")
        // Reads that succeed are not logged at info: a node others sync with stays quiet when idle.
        #expect(!hqLines.contains { $0["message"]?.hasPrefix("GET /v1/status") == true || $0["message"]?.hasPrefix("POST /v1/pull") == true })
        #expect(
            lintanLines.filter { $0["message"] == "sync round finished" }.allSatisfy {
                ($0["sync.sent"] ?? "0") != "0" || ($0["sync.received"] ?? "0") != "0"
            })
        // Numbers are JSON numbers (issue 25): a log pipeline sums and compares them without parsing.
        let hqNumbers = try Self.numericFields(hqServer.log)
        let lintanNumbers = try Self.numericFields(lintanServer.log)
        for key in ["http.status", "http.duration_ms", "http.bytes_in", "http.bytes_out", "port"] { #expect(hqNumbers.contains(key), "\(key)") }
        for key in ["sync.received", "sync.sent", "sync.bytes", "sync.seconds", "port"] { #expect(lintanNumbers.contains(key), "\(key)") }
        #expect(!hqNumbers.contains("request.id") && !hqNumbers.contains("caller.node"))
        for lines in [hqLines, lintanLines] {
            #expect(lines.first { $0["message"]?.hasPrefix("listening on http://127.0.0.1:") == true }?["version"] == SyncNodeVersion.text)
            #expect(lines.last?["message"]?.hasPrefix("stopped after") == true, "\(lines.last ?? [:])")
        }
    }

    @Test func aCallersRequestIdIsKeptOnlyWhenItIsAPlainTokenAndMetricsAccessIsEnforced() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let hq = dir.path("hq").path
        try Federation.hq(hq)
        var server = try ServeProcess(data: hq)
        let client = CurlClient()
        let plain = try await client.send(method: "GET", url: server.url + "/health", headers: ["X-Request-Id": "round-42.a_b"])
        #expect(plain.headers["x-request-id"] == "round-42.a_b")
        for hostile in ["two words", String(repeating: "a", count: 65), "a\"b", "é"] {
            let answer = try await client.send(method: "GET", url: server.url + "/health", headers: ["X-Request-Id": hostile])
            let id = try #require(answer.headers["x-request-id"])
            #expect(id != hostile && id.count == 12 && id.allSatisfy(\.isHexDigit), "\(id)")
        }
        // Errors carry the id too.
        let missing = try await client.send(method: "GET", url: server.url + "/v1/nothing", headers: ["X-Request-Id": "lost-1"])
        #expect(missing.status == 404 && missing.headers["x-request-id"] == "lost-1")
        #expect(server.stop() == 0)

        server = try ServeProcess(data: hq, extra: ["--metrics", "off"])
        let off = try await client.send(method: "GET", url: server.url + "/metrics")
        #expect(off.status == 404 && String(decoding: off.body, as: UTF8.self).contains("metrics are off on this node"))
        #expect(server.stop() == 0)
        let bad = try await Binary.runAsync(["serve", "--data", hq, "--metrics", "public"])
        #expect(bad.status == 64 && bad.stderr.contains("--metrics is local, open or off"), "\(bad.stderr)")
        let badFormat = try await Binary.runAsync(["serve", "--data", hq, "--log-format", "xml"])
        #expect(badFormat.status == 64 && badFormat.stderr.contains("--log-format is text or json"), "\(badFormat.stderr)")
    }

    /// Held and refused work, counted as it happens and read from the store at the scrape.
    @Test func heldAndRefusedWorkIsCountedAndHeldWorkLeavesTheGaugeOnceReleased() async throws {
        let f = try StoreFederation(liar: true)
        defer { f.remove() }
        // Reference data only HQ writes, recorded by a county that takes itself for HQ (a tampered
        // node): HQ refuses it, and the county counts its work the peer refused.
        let hqService = SyncService(store: f.hq.store)
        try f.lintan.store.commit([.put(collection: "counties", recordID: "lintan", fields: [.init("yearly_aid_fen", .int(99_000_000_000))])])
        let summary = try await Syncer(store: f.lintan.store, transport: LocalTransport(service: hqService)).run()
        #expect(summary.refused == 1)
        let lintanCounts = NodeMetrics()
        lintanCounts.round(peer: "http://hq", summary: summary, seconds: 0.5)
        let hqMetrics = try PrometheusText(String(decoding: try hqService.metricsExposition(), as: UTF8.self))
        #expect(hqMetrics.value("syncnode_transactions_refused_total", ["by": "this_node"]) == 1)
        let county = try PrometheusText(String(decoding: try lintanCounts.exposition(store: f.lintan.store), as: UTF8.self))
        #expect(county.value("syncnode_transactions_refused_total", ["by": "peer"]) == 1)
        #expect(county.value("syncnode_sync_rounds_total", ["peer": "http://hq", "outcome": "ok"]) == 1)
        #expect(county.value("syncnode_sync_round_duration_seconds_bucket", ["peer": "http://hq", "le": "1.0"]) == 1)
        #expect(county.value("syncnode_sync_round_duration_seconds_bucket", ["peer": "http://hq", "le": "0.25"]) == 0)
        // Buckets below 10 ms (a health check or a small pull), and every family says what it is.
        #expect(county.value("syncnode_sync_round_duration_seconds_bucket", ["peer": "http://hq", "le": "0.001"]) == 0)
        for metrics in [county, hqMetrics] {
            #expect(Set(metrics.types.keys).subtracting(metrics.helps.keys).isEmpty, "families without HELP: \(metrics.types.keys.sorted())")
        }

        // Work of a node the county office does not know yet is held, until the approval arrives.
        try await f.distributeRegistry()
        let lintanService = SyncService(store: f.lintan.store)
        let newcomer = try TestNode(site: "lintan", label: "lintan-township-3", role: .county, trust: .anchor(f.hq.store.info.publicKey))
        defer { newcomer.remove() }
        try newcomer.store.commit([.put(collection: "projects", recordID: "lt-village-road", fields: [.init("stage", .text("approved"))])])
        _ = try await Syncer(store: newcomer.store, transport: LocalTransport(service: lintanService)).run()
        var metrics = try PrometheusText(String(decoding: try lintanService.metricsExposition(), as: UTF8.self))
        #expect(metrics.value("syncnode_transactions_held") == 1)
        try f.hq.store.commit([
            .approve(node: newcomer.store.info.nodeID, key: newcomer.store.info.publicKey, site: "lintan", role: .county, label: "lintan-township-3")
        ])
        try await f.sync(f.lintan, with: f.hq)
        metrics = try PrometheusText(String(decoding: try lintanService.metricsExposition(), as: UTF8.self))
        #expect(metrics.value("syncnode_transactions_held") == 0)

    }

    /// A sync, and a bundle import, report how far they are against totals: off a terminal, a
    /// line every $SYNCNODE_PROGRESS_SECONDS.
    @Test func longSyncsAndImportsReportProgressAgainstTotals() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (hq, lintan) = try Federation.hqAndLintan(in: dir)
        do {
            let store = try Store.open(URL(fileURLWithPath: hq), clock: SystemClock())
            defer { try? store.close() }
            for i in 0..<3000 {
                try store.commit([
                    .put(collection: "projects", recordID: "lt-p\(i)", fields: [.init("note", .text(String(repeating: "x", count: 200)))])
                ])
            }
        }
        let server = try ServeProcess(data: hq)
        defer { server.stop() }
        let env = ["SYNCNODE_PROGRESS_SECONDS": "0.05"]
        let sync = try await Binary.runAsync(["sync", "--data", lintan, "--peer", server.url, "--batch-transactions", "50"], environment: env)
        #expect(sync.status == 0, "\(sync.stderr)")
        let lines = sync.stderr.split(separator: "\n").filter { $0.contains(": received ") && $0.contains(" of ") }
        #expect(lines.count >= 2, "\(sync.stderr)")
        // "URL: received 1200 of 3003 transactions, sent 0 of 0, 1.2 MB, ..."
        let totals = lines.compactMap { line -> (Int, Int)? in
            guard let r = line.range(of: "received ") else { return nil }
            let words = line[r.upperBound...].split(separator: " ")
            guard words.count > 2, let done = Int(words[0]), let total = Int(words[2]) else { return nil }
            return (done, total)
        }
        #expect(totals.count == lines.count && totals.allSatisfy { $0.1 >= 3000 && $0.0 <= $0.1 }, "\(lines)")
        #expect(zip(totals, totals.dropFirst()).allSatisfy { $0.0 <= $1.0 }, "\(totals)")

        // Export on a terminal (`script` gives it one): its stages, drawn over one line.
        let bundle = dir.path("all.bundle").path
        // Approved before the export: HQ's bundle is sealed for the nodes its registry lists.
        let gangu = dir.path("gangu").path
        try Federation.member(gangu, site: "gangu", label: "gangu-1", hq: hq)
        let export = try Binary.shell("script -qec '\"$SYNCNODE\" bundle export --data \(hq) --out \(bundle)' /dev/null")
        #expect(export.status == 0, "\(export.stdout)")
        let wrote = try #require(export.stdout.firstMatch(of: /wrote (\d+) transactions/).flatMap { Int($0.1) }, "\(export.stdout)")
        #expect(wrote >= 3000)
        #expect(export.stdout.contains("\r\u{1B}[Kcompressing: \(wrote) of \(wrote) transactions, "), "\(export.stdout.debugDescription)")
        #expect(export.stdout.contains("\r\u{1B}[K\rwrote") || export.stdout.contains("\r\u{1B}[Kwrote"), "the line is cleared before the summary")
        let imported = try await Binary.runAsync(["bundle", "import", "--data", gangu, bundle], environment: env)
        #expect(imported.status == 0, "\(imported.stderr)")
        let applying = imported.stderr.split(separator: "\n").filter { $0.hasPrefix("applying: ") || $0.hasPrefix("checking the signature: ") }
        #expect(!applying.isEmpty, "\(imported.stderr)")
        #expect(applying.allSatisfy { $0.contains(" of \(wrote) transactions, ") }, "\(applying)")
        // With --json nothing but the answer: no progress lines.
        let quiet = try await Binary.runAsync(["bundle", "import", "--data", gangu, bundle, "--json"], environment: env)
        #expect(quiet.status == 0 && !quiet.stderr.contains("applying"), "\(quiet.stderr)")
    }

    /// A message or field with quotes, newlines or control characters stays one JSON line.
    @Test func jsonLogLinesStayOneObjectPerLineWhateverTheyCarry() throws {
        final class Lines: @unchecked Sendable {
            let lock = NSLock()
            var all: [String] = []
        }
        let lines = Lines()
        var handler = JSONLogHandler(label: "t") { line in lines.lock.withLock { lines.all.append(line) } }
        handler.logLevel = .debug
        handler[metadataKey: "node"] = "hq"
        let logger = Logger(label: "t") { _ in handler }
        logger.warning(
            "a \"quoted\"\nsecond line\u{1}",
            metadata: [
                "sync.peer": "http://x/\"y\"", "n": .stringConvertible(3), "seconds": .stringConvertible(1.25), "ok": .stringConvertible(true),
                "big": .stringConvertible(UInt64.max), "nan": .stringConvertible(Double.nan), "list": .array([.stringConvertible(1), "a"]),
                "digits": "0042",
            ])
        logger.trace("below the level")
        #expect(lines.all.count == 1)
        let line = try #require(lines.all.first)
        #expect(line.hasSuffix("\n") && line.dropLast().allSatisfy { $0 != "\n" })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "a \"quoted\"\nsecond line\u{1}")
        #expect(object["sync.peer"] as? String == "http://x/\"y\"" && object["node"] as? String == "hq" && object["level"] as? String == "warning")
        #expect(object["logger"] as? String == "t" && (object["time"] as? String)?.hasSuffix("Z") == true)
        // Typed: numbers logged as numbers are JSON numbers (issue 25); text that looks like a
        // number stays text; what JSON cannot hold as a number is written as text.
        #expect(line.contains("\"n\":3") && line.contains("\"seconds\":1.25") && line.contains("\"ok\":true"), "\(line)")
        #expect(object["big"] as? String == "18446744073709551615" && object["nan"] as? String == "nan")
        #expect(line.contains("\"list\":[1,\"a\"]") && object["digits"] as? String == "0042", "\(line)")
    }

    @Test func metricsNeverShowAPeersPassword() {
        #expect(NodeMetrics.peerLabel("https://ops:secret@hq.example:8420/") == "https://hq.example:8420/")
        #expect(NodeMetrics.peerLabel("http://127.0.0.1:8420") == "http://127.0.0.1:8420")
    }

    @Test func progressLinesSayHowFarOfWhatTotalAtWhatRateAndWhatIsLeft() {
        var p = SyncProgress(received: 1200, sent: 0, wireBytes: 3_200_000)
        p.expectedReceive = 5000
        p.seconds = 2
        #expect(p.description == "received 1200 of 5000 transactions, sent 0 of 0, 3.2 MB, 600/s, about 6 seconds left")
        // More arrived than the start's vectors promised (the peer received more meanwhile).
        p.received = 5100
        p.seconds = 0.5
        #expect(p.description == "received 5100 of 5100 transactions, sent 0 of 0, 3.2 MB")
        var b = BundleProgress(stage: "applying", done: 300, total: 3000, bytes: 1_000_000, totalBytes: 9_800_000)
        b.seconds = 3
        #expect(b.description == "applying: 300 of 3000 transactions, 1.0 MB of 9.8 MB, 100/s, about 27 seconds left")
        #expect(ByteText.describe(999) == "999 B" && ByteText.describe(41_000) == "41.0 kB" && ByteText.describe(2_500_000_000) == "2.50 GB")
    }

    /// The last arrival per node is read by one seek per node; it must say what a scan of the
    /// whole log says, with work relayed, held then released, and refused in the log.
    @Test func lastArrivalPerNodeBySeekAgreesWithAScanOfTheLog() async throws {
        let f = try StoreFederation(liar: true)
        defer { f.remove() }
        try f.lintan.store.commit([.put(collection: "counties", recordID: "lintan", fields: [.init("yearly_aid_fen", .int(1))])])
        try await f.sync(f.lintan, with: f.hq)
        try await f.distributeRegistry(skippingLiar: true)
        let newcomer = try TestNode(site: "gangu", label: "gangu-township-1", role: .county, trust: .anchor(f.hq.store.info.publicKey))
        defer { newcomer.remove() }
        for i in 0..<3 {
            try newcomer.store.commit([.put(collection: "projects", recordID: "gg-road-\(i)", fields: [.init("km", .int(Int64(i)))])])
        }
        _ = try await Syncer(store: newcomer.store, transport: LocalTransport(service: SyncService(store: f.gangu.store))).run()
        #expect(try f.gangu.store.heldTransactions().count == 3)
        for step in 0..<4 {
            f.hq.clock.advance(by: 1000)
            f.gangu.clock.advance(by: 1000)
            try f.hq.store.commit([.put(collection: "counties", recordID: "c\(step)", fields: [.init("n", .int(Int64(step)))])])
            if step == 1 {
                try f.hq.store.commit([
                    .approve(
                        node: newcomer.store.info.nodeID, key: newcomer.store.info.publicKey, site: "gangu", role: .county, label: "gangu-township-1")
                ])
            }
            try await f.sync(f.gangu, with: f.hq)
        }
        try await f.sync(f.lintan, with: f.hq)
        for store in [f.hq.store, f.gangu.store, f.lintan.store] {
            let scanned = try store.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT n.id AS id, max(l.received) AS received FROM log l JOIN node n ON n.ix = l.origin GROUP BY l.origin"
                )
                .map { (NodeID(bytes: $0["id"] as Data)!, UInt64($0["received"] as Int64)) }
            }
            let byScan = Dictionary(scanned, uniquingKeysWith: max)
            #expect(byScan.count >= 3)
            #expect(try store.lastReceivedByNode() == byScan)
        }
        #expect(try f.gangu.store.lastReceivedByNode()[newcomer.store.info.nodeID] != nil)
    }
}
