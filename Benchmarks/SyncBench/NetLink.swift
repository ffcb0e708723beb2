import Foundation
import GRDB
import SyncNode
import SyncProtocol

/// P5: a county's day over a slow, lossy link, against the raw transfer of the same compressed
/// bytes over the same link; then a cut link and a resumed round.
///
/// The link: two network namespaces made here (HQ and county) joined by a veth pair; on both
/// ends `tc tbf rate 64kbit burst 4kb latency 400ms` on egress and an nftables netdev ingress rule
/// `numgen random mod 10 == 0 drop` (10% of the packets arriving at each end are lost, both
/// directions). HQ runs `syncnode serve` (the `syncnode` binary next to this one when built, else
/// this executable's `serve-child`) in its namespace; the county runs `syncnode sync` (or
/// `sync-child`) in the other. The raw transfer is `curl --data-binary` of the gzip-compressed
/// push body of the same day (a POST the server reads whole and refuses).
///
/// Needs root, `ip` (iproute2), `tc`, `nft` (nftables) and `curl`; skipped with a note otherwise.
/// The namespaces are always deleted, also on SIGINT/SIGTERM.
enum NetLink {
    static let hqAddress = "10.250.77.1"
    static let countyAddress = "10.250.77.2"

    static func run(transactions: Int, runs: Int, cutBatch: Int, photos: (count: Int, bytes: Int)? = nil) async throws -> [Figure] {
        let tools = ["ip", "tc", "nft", "curl"].map { ($0, which($0)) }
        if geteuid() != 0 {
            Notes.add("P5 skipped: it needs root (network namespaces, tc, nftables).")
            return []
        }
        if let missing = tools.first(where: { $0.1 == nil }) {
            Notes.add("P5 skipped: `\(missing.0)` is missing (apt-get install iproute2 nftables curl).")
            return []
        }
        let ip = tools[0].1!
        if (try? command([ip, "netns", "list"]))?.status != 0 {
            Notes.add("P5 skipped: `ip netns` is unavailable here.")
            return []
        }
        let scratch = try Scratch("p5")
        defer { scratch.remove() }
        let link: LossyLink
        do {
            link = try LossyLink(ip: ip, tc: tools[1].1!, nft: tools[2].1!, scratch: scratch)
        } catch {
            Notes.add("P5 skipped: the namespaces, tc qdiscs or nftables rules could not be set up here (\(error)).")
            return []
        }
        defer { link.destroy() }
        let signals = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                Child.killAll()
                link.destroy()
                scratch.remove()
                exit(128 + sig)
            }
            source.resume()
            return source
        }
        defer {
            for s in signals { s.cancel() }
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
        }
        if let photos {
            return try PhotoDay.measure(link: link, scratch: scratch, transactions: transactions, photos: photos.count, photoBytes: photos.bytes)
        }
        return try await measure(link: link, curl: tools[3].1!, scratch: scratch, transactions: transactions, runs: runs, cutBatch: cutBatch)
    }

    private static func measure(link: LossyLink, curl: String, scratch: Scratch, transactions: Int, runs: Int, cutBatch: Int) async throws
        -> [Figure]
    {
        let countyDir = scratch.path("county")
        let county = try countyDay(in: countyDir, transactions: transactions)
        let changes = transactions * 10
        // The raw payload: the push body the sync sends (one batch: every transaction's frame, with
        // its 64-byte signature), gzip-compressed.
        let outgoing = try county.frames(missingFrom: VersionVector())
        let header = BatchHeader(
            from: PeerIdentity(node: county.info.nodeID, site: county.info.site, label: county.info.label), count: outgoing.frames.count,
            more: false, clock: UInt64(Date().timeIntervalSince1970 * 1000))
        let payload = Gzip.compress(BatchCodec.encode(header: try WireCodec.encodeMessage(header), frames: outgoing.frames))
        let payloadFile = scratch.path("payload.gz")
        try Data(payload).write(to: payloadFile)
        let pull = try WireCodec.encodeMessage(
            PullRequest(
                from: PeerIdentity(node: county.info.nodeID, site: county.info.site, label: county.info.label), vector: VersionVector(),
                maxTransactions: 500, maxBytes: 2 << 20))
        let pullFile = scratch.path("pull.json")
        try Data(pull).write(to: pullFile)
        try county.close()

        let runner = Runner(link: link, scratch: scratch, county: countyDir)
        var syncSeconds: [Double] = []
        var rawSeconds: [Double] = []
        var raw3Seconds: [Double] = []
        var syncBytes: [Int] = []
        for r in 0..<runs {
            let server = try runner.startHQ("hq-\(r)")
            defer { server.stop() }
            let raw = {
                if let t = curlTime(link: link, curl: curl, ["--data-binary", "@\(payloadFile.path)", "\(server.url)/v1/pull"], bytes: payload.count)
                {
                    rawSeconds.append(t)
                }
            }
            // The same bytes in as many requests as a round makes, each on a new connection, while
            // HQ is still empty (so the pull answers an empty batch, as in the round).
            if let a = curlTime(link: link, curl: curl, ["\(server.url)/v1/status"], bytes: 0),
                let b = curlTime(link: link, curl: curl, ["--data-binary", "@\(pullFile.path)", "\(server.url)/v1/pull"], bytes: pull.count),
                let c = curlTime(link: link, curl: curl, ["--data-binary", "@\(payloadFile.path)", "\(server.url)/v1/pull"], bytes: payload.count)
            {
                raw3Seconds.append(a + b + c)
            }
            if r % 2 == 1 { raw() }
            // A round that fails (on this link TCP can back off for longer than the client's 20 s
            // stall limit) is followed by another, as the node's scheduler does; the day's time is
            // then that of every attempt until HQ holds it all.
            var seconds = 0.0
            var bytes = 0
            var sent = 0
            var failures: [String] = []
            while true {
                let started = Date()
                let result = try runner.sync(server: server, batch: 500, timeout: 120, stall: 20, wait: 300)
                sent += result.sent
                bytes += result.bytes
                if result.ok {
                    seconds += result.seconds
                    break
                }
                seconds += Date().timeIntervalSince(started)
                failures.append(result.error ?? "no result")
                guard failures.count < 3 else { throw BenchError("P5 sync run \(r) failed 3 times: \(failures.joined(separator: "; "))") }
            }
            let hqHolds = try held(server.directory.appendingPathComponent(Store.fileName))
            guard hqHolds == transactions, failures.isEmpty ? sent == transactions : true else {
                throw BenchError("P5 sync run \(r): HQ holds \(hqHolds) of \(transactions) transactions (the rounds reported \(sent) sent)")
            }
            if !failures.isEmpty {
                Notes.add(
                    "P5: run \(r) needed \(failures.count + 1) rounds (\(failures.joined(separator: "; "))); its time, \(format(seconds)) s, counts every round"
                )
            }
            syncSeconds.append(seconds)
            syncBytes.append(bytes)
            if r % 2 == 0 { raw() }
        }
        guard !rawSeconds.isEmpty, !raw3Seconds.isEmpty else { throw BenchError("P5: every raw transfer failed") }

        // A cut link: the round fails mid-way; the next round sends only what HQ lacks.
        let server = try runner.startHQ("hq-cut")
        defer { server.stop() }
        let hqFile = server.directory.appendingPathComponent(Store.fileName)
        let cutAfter = max(1, transactions * 3 / 10)
        let first = try runner.syncChild(server: server, batch: cutBatch, timeout: 60, stall: 3)
        let deadline = Date().addingTimeInterval(180)
        var heldAtCut = 0
        while first.isRunning && Date() < deadline {
            heldAtCut = (try? held(hqFile)) ?? 0
            if heldAtCut >= cutAfter { break }
            usleep(50_000)
        }
        guard first.isRunning else { throw BenchError("P5: the round finished before the link could be cut (\(heldAtCut) held)") }
        try link.cut()
        let firstStatus = first.wait(timeout: 120)
        let heldAfterCut = try held(hqFile)
        try link.restore()
        let firstResult = runner.parse(first)
        let second = try runner.sync(server: server, batch: cutBatch, timeout: 120, stall: 20, wait: 300)
        let finalHeld = try held(hqFile)
        let resent = heldAfterCut + second.sent - transactions
        Notes.add(
            "P5: cut after HQ held \(heldAtCut) transactions (batches of \(cutBatch)); the cut round ended with status \(firstStatus.map(String.init) ?? "killed") (\(firstResult.error ?? "no error?")); HQ held \(heldAfterCut); the resumed round sent \(second.sent) (\(second.bytes) bytes, \(format(second.seconds)) s); HQ now holds \(finalHeld) of \(transactions)."
        )
        let usesCLI = runner.cli != nil
        let t = median(syncSeconds)
        let rawT = median(rawSeconds)
        let ideal = Double(payload.count) * 8 / 64000
        Notes.add(
            "P5: \(usesCLI ? "`syncnode serve`/`syncnode sync`" : "the bench's serve-child/sync-child (syncnode binary not built)"); \(runs) runs; sync times \(syncSeconds.map(format).joined(separator: ", ")) s, \(syncBytes.map(String.init).joined(separator: ", ")) bytes on the wire; raw curl times \(rawSeconds.map(format).joined(separator: ", ")) s (3 requests: \(raw3Seconds.map(format).joined(separator: ", ")) s) for \(payload.count) bytes (\(format(Double(payload.count) / Double(changes))) B per field change; at exactly 64 kbit/s without loss: \(format(ideal)) s)."
        )
        return [
            Figure(
                id: "P5",
                name: "a county's day (\(changes) field changes, \(transactions) transactions) over 64 kbit/s with 10% loss, median of \(runs)",
                value: t, unit: "s", baseline: rawT, baselineName: "raw curl upload of the \(payload.count)-byte gzip payload, same link",
                goal: "≤ 1.5x raw", met: t <= 1.5 * rawT),
            Figure(
                id: "P5", name: "the same day against 3 raw requests (status, pull, the payload), each on a new connection, as a round makes",
                value: t, unit: "s", baseline: median(raw3Seconds), baselineName: "3 sequential curl requests", goal: "—"),
            Figure(
                id: "P5", name: "cut link, then a new round: transactions sent again that HQ already held", value: Double(max(resent, 0)),
                unit: "transactions", goal: "0, and HQ holds all", met: resent == 0 && finalHeld == transactions && second.ok),
        ]
    }

    /// A county node holding its day: `transactions` transactions, each two records of 5 fields
    /// (`projects/day-0`, `day-1`, …).
    static func countyDay(in directory: URL, transactions: Int) throws -> Store {
        let county = try Store.create(in: directory, site: "lintan", label: "lintan-office-1")
        for t in 0..<transactions {
            try county.commit(
                (0..<2).map { k in
                    let i = t * 2 + k
                    return .put(collection: "projects", recordID: "day-\(i)", fields: Array(Workload.fields(i).prefix(5)))
                })
        }
        return county
    }

    /// `curl` in the county namespace: the request's total time, or nil (with a note) when it did
    /// not move `bytes` bytes.
    private static func curlTime(link: LossyLink, curl: String, _ arguments: [String], bytes: Int) -> Double? {
        let argv =
            [
                curl, "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_upload} %{http_code}", "--compressed", "-H", "Expect:", "-H",
                "Content-Type: application/octet-stream", "--max-time", "120",
            ]
            + arguments
        guard let (status, out) = try? command(link.exec(link.county, argv), timeout: 150, check: false) else { return nil }
        let parts = out.split(separator: " ")
        if status == 0, parts.count == 3, Int(parts[1]) == bytes, let t = Double(parts[0]) { return t }
        Notes.add("P5: a raw transfer failed (curl \(status): \(out.prefix(200)))")
        return nil
    }

    /// Transactions held by the node in `file` (read from another process while HQ serves).
    static func held(_ file: URL) throws -> Int {
        var config = Configuration()
        config.readonly = true
        let queue = try DatabaseQueue(path: file.path, configuration: config)
        defer { try? queue.close() }
        return try queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM log") ?? 0 }
    }

    static func which(_ tool: String) -> String? {
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/bin", "/usr/local/sbin"] {
            let path = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Starts HQ servers and county sync rounds in their namespaces.
    struct Runner {
        let link: LossyLink
        let scratch: Scratch
        let county: URL
        /// The `syncnode` binary next to this one, if it was built.
        let cli: String?

        init(link: LossyLink, scratch: Scratch, county: URL) {
            self.link = link
            self.scratch = scratch
            self.county = county
            let path = URL(fileURLWithPath: Child.benchExecutable).deletingLastPathComponent().appendingPathComponent("syncnode").path
            cli = FileManager.default.isExecutableFile(atPath: path) ? path : nil
        }

        struct Server {
            let child: Child
            let url: String
            let directory: URL
            func stop() { child.stop() }
        }

        struct Result {
            var ok: Bool
            var sent: Int
            var bytes: Int
            var seconds: Double
            var error: String?
        }

        /// A fresh, empty HQ node serving in the HQ namespace.
        func startHQ(_ name: String) throws -> Server {
            let directory = scratch.path(name)
            let hq = try Store.create(in: directory, site: "hq", label: "dongli-hq")
            try hq.close()
            let portFile = scratch.path("\(name).port")
            let argv =
                cli.map {
                    [$0, "serve", "--data", directory.path, "--listen", "\(NetLink.hqAddress):0", "--port-file", portFile.path, "--every", "24h"]
                } ?? [
                    Child.benchExecutable, "serve-child", "--data", directory.path, "--listen", "\(NetLink.hqAddress):0", "--port-file",
                    portFile.path,
                ]
            let full = link.exec(link.hq, argv)
            let child = try Child(full[0], Array(full.dropFirst()), label: "P5 HQ server", stderrFile: scratch.path("\(name).log"))
            let port = try waitForPort(portFile, child: child)
            return Server(child: child, url: "http://\(NetLink.hqAddress):\(port)", directory: directory)
        }

        func syncChild(server: Server, batch: Int, timeout: Int, stall: Int) throws -> Child {
            let argv =
                cli.map {
                    [
                        $0, "sync", "--data", county.path, "--peer", server.url, "--json", "--batch-transactions", "\(batch)", "--timeout",
                        "\(timeout)",
                        "--stall-seconds", "\(stall)",
                    ]
                } ?? [
                    Child.benchExecutable, "sync-child", "--data", county.path, "--peer", server.url, "--batch", "\(batch)", "--timeout",
                    "\(timeout)",
                    "--stall-seconds", "\(stall)",
                ]
            let full = link.exec(link.county, argv)
            return try Child(full[0], Array(full.dropFirst()), label: "P5 county sync", stderrFile: scratch.path("sync-\(UUID().uuidString).log"))
        }

        func sync(server: Server, batch: Int, timeout: Int, stall: Int, wait: Double) throws -> Result {
            let child = try syncChild(server: server, batch: batch, timeout: timeout, stall: stall)
            child.wait(timeout: wait)
            return parse(child)
        }

        /// The round's outcome from `syncnode sync --json` (an array with one object per peer) or
        /// from `sync-child` (one object).
        func parse(_ child: Child) -> Result {
            let text = child.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let any = try? JSONSerialization.jsonObject(with: Data(text.utf8))
            guard let object = (any as? [[String: Any]])?.first ?? (any as? [String: Any]) else {
                return Result(
                    ok: false, sent: 0, bytes: 0, seconds: 0,
                    error: "no result (exit \(child.process.isRunning ? -1 : child.process.terminationStatus))")
            }
            let ok = (object["ok"] as? Bool) ?? (object["seconds"] != nil)
            return Result(
                ok: ok, sent: object["sent"] as? Int ?? 0, bytes: (object["bytes"] as? Int) ?? (object["wireBytes"] as? Int) ?? 0,
                seconds: object["seconds"] as? Double ?? 0, error: object["error"] as? String)
        }
    }
}

/// Two network namespaces joined by a veth pair, rate-limited and lossy in both directions.
final class LossyLink: Sendable {
    let ip: String
    let tc: String
    let nft: String
    let hq: String
    let county: String
    let hqInterface: String
    let countyInterface: String
    private let rulesDirectory: URL

    init(ip: String, tc: String, nft: String, scratch: Scratch) throws {
        self.ip = ip
        self.tc = tc
        self.nft = nft
        let tag = String(getpid())
        hq = "snb-hq-\(tag)"
        county = "snb-county-\(tag)"
        hqInterface = "snbh\(tag)"
        countyInterface = "snbc\(tag)"
        rulesDirectory = scratch.url
        do {
            try command([ip, "netns", "add", hq])
            try command([ip, "netns", "add", county])
            try command([ip, "link", "add", hqInterface, "type", "veth", "peer", "name", countyInterface])
            try command([ip, "link", "set", hqInterface, "netns", hq])
            try command([ip, "link", "set", countyInterface, "netns", county])
            for (ns, interface, address) in [(hq, hqInterface, NetLink.hqAddress), (county, countyInterface, NetLink.countyAddress)] {
                try command([ip, "-n", ns, "link", "set", "lo", "up"])
                try command([ip, "-n", ns, "addr", "add", "\(address)/30", "dev", interface])
                try command([ip, "-n", ns, "link", "set", interface, "up"])
                try command(exec(ns, [tc, "qdisc", "add", "dev", interface, "root", "tbf", "rate", "64kbit", "burst", "4kb", "latency", "400ms"]))
                let rules = rulesDirectory.appendingPathComponent("\(ns).nft")
                try Data(
                    """
                    table netdev snb {
                        chain ingress {
                            type filter hook ingress device "\(interface)" priority 0; policy accept;
                            numgen random mod 10 == 0 drop
                        }
                    }

                    """.utf8
                ).write(to: rules)
                try command(exec(ns, [nft, "-f", rules.path]))
            }
        } catch {
            destroy()
            throw error
        }
    }

    func exec(_ namespace: String, _ argv: [String]) -> [String] { [ip, "netns", "exec", namespace] + argv }

    /// Drops every packet arriving at either end.
    func cut() throws {
        for ns in [hq, county] { try command(exec(ns, [nft, "insert", "rule", "netdev", "snb", "ingress", "drop"])) }
    }

    /// Back to 10% loss.
    func restore() throws {
        for ns in [hq, county] {
            try command(exec(ns, [nft, "flush", "chain", "netdev", "snb", "ingress"]))
            try command(exec(ns, [nft, "add", "rule", "netdev", "snb", "ingress", "numgen", "random", "mod", "10", "==", "0", "drop"]))
        }
    }

    /// Deletes both namespaces (and with them the veth pair, its qdiscs and the rules).
    func destroy() {
        for ns in [hq, county] { _ = try? command([ip, "netns", "del", ns], check: false) }
    }
}
