import Crypto
import Foundation
import SyncProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// How one run's clock-skew fault goes.
enum SkewMode: String {
    /// No node's clock is wrong.
    case none
    /// Lintan runs 4 minutes ahead for a while: within maxDrift, nothing may be refused.
    case within
    /// Lintan runs maxDrift + 15 s ahead for a while: peers refuse its requests and its
    /// transactions while they are too far ahead; after its clock is fixed they stay ahead (the
    /// hybrid clock never goes back) until wall time catches up, then must arrive.
    case beyond
    /// Lintan runs two days ahead for a while: everything it records then is refused by its peers;
    /// once its clock is right, `repair-clock` records that work again, and nothing may be lost.
    case far
}

/// A write the CLI acknowledged (exit 0): one field of one record, as `record history` shows it.
struct AckedField {
    var node: Node
    var collection: String
    var id: String
    var field: String
    /// `s:TEXT` or `n:NUMBER`, as `ChaosRun.valueKey` renders history values.
    var value: String
    var seq: Int
}

/// A ledger entry the CLI acknowledged.
struct AckedEntry {
    var node: Node
    var ledger: String
    var id: String
    /// True for the entries the policy refuses everywhere but at their origin (see `setUp`).
    var expectRefused: Bool
    /// A disbursement's county and amount, for the recount of HQ's funds report.
    var county: String? = nil
    var amountFen: Int? = nil
}

/// A file the CLI acknowledged attaching (`attach` printed its SHA-256): the checker fetches it
/// from every node and hashes it.
struct AckedAttachment {
    var node: Node
    var collection: String
    var id: String
    var sha256: String
}

/// One seeded run: five nodes, four fault proxies, a workload with faults, healing, the checker.
final class ChaosRun {
    static let maxDriftMillis: Int64 = 10 * 60 * 1000

    let index: Int
    let seed: UInt64
    let steps: Int
    let skew: SkewMode
    let tools: Tools
    let directory: String
    var rng: SeededRandom
    let started = Date()
    let cli: CLI

    let hq: Node
    let relay: Node
    let chengde: Node
    let lintan: Node
    let gangu: Node
    /// A node approved, then revoked, that forges back-dated work (see Adversary.swift); it is not
    /// among the nodes that must end identical.
    let rogue: Node
    var nodes: [Node] { [hq, relay, chengde, lintan, gangu] }
    /// Lintan's transactions were withdrawn and recorded again (restored from an older copy, or a
    /// clock far ahead repaired): its acknowledged writes are found by value, under new numbers.
    var lintanRewritten = false
    /// Gangu signed another history (`equivocateGangu`): if HQ accepted that copy first, Gangu's
    /// own work under those numbers is recorded again under new ones.
    var ganguRewritten = false
    /// Lintan's identity run on a second machine (`runLintanOnASecondMachine`), once it has.
    var lintanSecond: Node?
    var lintanBackup: String { directory + "/lintan-backup" }
    var counties: [Node] { [chengde, lintan, gangu] }
    var proxies: [Proxy] = []
    /// The proxy each node syncs through.
    var route: [String: Proxy] = [:]

    var schedule: [String] = []
    var faults: [String: Int] = [:]
    var ackedFields: [AckedField] = []
    var ackedEntries: [AckedEntry] = []
    var ackedAttachments: [AckedAttachment] = []
    var ackedWrites = 0
    var killedWrites = 0
    var refusedLocally = 0
    /// Writes answered "not found" (exit 3: deleting or editing a record that is gone).
    var notFoundWrites = 0
    /// Writes that failed otherwise (each is logged in the schedule with its exit status).
    var failedWrites = 0
    /// Concurrent edits of which one side was not acknowledged.
    var unackedConcurrentEdits = 0
    var skewRefusals = 0
    var writeCounter = 0
    var pendingRestarts: [(node: Node, steps: Int)] = []
    var partitions: [(proxy: Proxy, steps: Int)] = []
    var tornDown = false

    init(index: Int, seed: UInt64, steps: Int, skew: SkewMode, tools: Tools, root: String) throws {
        self.index = index
        self.seed = seed
        self.steps = steps
        self.skew = skew
        self.tools = tools
        rng = SeededRandom(seed: seed)
        directory = root + "/run-\(index)-seed-\(seed)"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        cli = CLI(tools: tools, logDirectory: directory)
        hq = Node(name: "hq", site: "hq", role: "hq", data: directory + "/hq")
        relay = Node(name: "relay", site: "dongli", role: "office", data: directory + "/relay")
        chengde = Node(name: "chengde", site: "chengde", role: "county", data: directory + "/chengde")
        lintan = Node(name: "lintan", site: "lintan", role: "county", data: directory + "/lintan")
        gangu = Node(name: "gangu", site: "gangu", role: "county", data: directory + "/gangu")
        rogue = Node(name: "rogue", site: "lintan", role: "county", data: directory + "/rogue")
    }

    var elapsed: String { String(format: "%7.2fs", Date().timeIntervalSince(started)) }

    func log(_ event: String) { schedule.append("\(elapsed) \(event)") }

    func count(_ kind: String) { faults[kind, default: 0] += 1 }

    static func prefix(_ node: Node) -> String {
        switch node.site {
        case "chengde": return "cd-"
        case "lintan": return "lt-"
        case "gangu": return "gg-"
        default: return "dl-"
        }
    }

    // MARK: set-up

    /// Creates the federation the way operators do, starts HQ, the relay, Chengde's `serve` and
    /// the proxies. The relay is created with `--role finance` but HQ approves it as `office`:
    /// before HQ's registry reaches it, it records two disbursements that every receiver must
    /// refuse (offices may not append to money ledgers). They are acknowledged at the relay and
    /// must stay there, listed as refused, and nowhere else.
    func setUp() throws {
        let hqInfo = try cli.must(hq, ["init", "--site", "hq", "--role", "hq", "--label", "dongli-hq", "--json"]).json() as? [String: Any] ?? [:]
        hq.id = hqInfo["node"] as? String ?? ""
        hq.publicKey = hqInfo["publicKey"] as? String ?? ""
        for node in [relay, chengde, lintan, gangu] {
            let role = node === relay ? "finance" : node.role
            let info =
                try cli.must(node, ["init", "--site", node.site, "--role", role, "--trust", hq.publicKey, "--label", node.name, "--json"]).json()
                as? [String: Any] ?? [:]
            node.id = info["node"] as? String ?? ""
            node.publicKey = info["publicKey"] as? String ?? ""
            try cli.must(hq, ["node", "approve", node.id, "--key", node.publicKey, "--site", node.site, "--role", node.role, "--label", node.name])
        }
        for i in 0..<2 {
            let r = try cli.must(relay, ["ledger", "append", "disbursements", "county=chengde", "amount_fen:=\(1000 + i)"])
            ackedEntries.append(
                AckedEntry(node: relay, ledger: "disbursements", id: r.stdout.trimmingCharacters(in: .whitespacesAndNewlines), expectRefused: true))
            ackedWrites += 1
        }
        for county in counties {
            try cli.must(hq, ["record", "put", "counties", county.site, "name=\(county.site)", "plan_year:=2017"])
        }
        try cli.startServe(hq)
        try setUpRogue()
        let plan = { (n: UInt64) in
            "seed=\(n),cut-request=0.06,cut-response=0.06,stall=0.02,reset=0.05,delay=0.08,delay-ms=0..300,duplicate-request=0.05,duplicate-response=0.05,cut-bytes=0..1500"
        }
        for (i, node) in [relay, chengde, lintan].enumerated() {
            let proxy = try Proxy(
                tools: tools, name: "proxy-\(node.name)-hq", upstreamPort: hq.port!, plan: plan(seed &* 31 &+ UInt64(i)), directory: directory)
            proxies.append(proxy)
            route[node.name] = proxy
        }
        try cli.must(relay, ["peer", "add", route["relay"]!.url])
        try cli.startServe(relay)
        let toRelay = try Proxy(tools: tools, name: "proxy-gangu-relay", upstreamPort: relay.port!, plan: plan(seed &* 31 &+ 7), directory: directory)
        proxies.append(toRelay)
        route["gangu"] = toRelay
        try cli.must(chengde, ["peer", "add", route["chengde"]!.url])
        try cli.startServe(chengde)
        log(
            "set up: hq :\(hq.port!), relay :\(relay.port!) (via \(route["relay"]!.port)), chengde serve (via \(route["chengde"]!.port)), "
                + "lintan CLI sync (via \(route["lintan"]!.port)), gangu CLI sync to relay (via \(toRelay.port)); skew mode \(skew.rawValue)")
    }

    // MARK: workload

    /// One write on `node`, chosen by the seed; records it if acknowledged.
    func write(on node: Node, kill killAfterMillis: Int? = nil) throws {
        writeCounter += 1
        let n = writeCounter
        var args: [String]
        var fields: [(String, String)] = []
        var ledger: String?
        var money: (county: String, fen: Int)?
        let p = Self.prefix(node)
        if node === hq {
            switch rng.int(0...9) {
            case 0...4:
                let county = rng.pick(counties)
                args = ["record", "put", "counties", county.site, "note=hq-\(n)"]
                fields = [("note", "s:hq-\(n)")]
            case 5...7:
                let county = rng.pick(counties)
                let fen = rng.int(1...9_000_000)
                args = ["ledger", "append", "disbursements", "county=\(county.site)", "amount_fen:=\(fen)"]
                ledger = "disbursements"
                money = (county.site, fen)
            default:
                // HQ edits a county's project: concurrent with the county's own edits (a conflict).
                let county = rng.pick(counties)
                let id = Self.prefix(county) + "proj-\(rng.int(0...4))"
                args = ["record", "put", "projects", id, "stage=hq-review-\(n)"]
                fields = [("stage", "s:hq-review-\(n)")]
            }
        } else if node === relay {
            args = ["record", "put", "visits", "dl-visit-\(rng.int(0...3))", "note=visit-\(n)"]
            fields = [("note", "s:visit-\(n)")]
        } else {
            switch rng.int(0...19) {
            case 0...11:
                let progress = rng.int(0...100)
                let stage = rng.pick(["planned", "started", "building", "done"]) + "-\(n)"
                args = ["record", "put", "projects", p + "proj-\(rng.int(0...4))", "stage=\(stage)", "progress_pct:=\(progress)"]
                fields = [("stage", "s:\(stage)"), ("progress_pct", "n:\(progress)")]
            case 12...16:
                args = ["ledger", "append", "trainings", "county=\(node.site)", "attendees:=\(rng.int(5...80))", "topic=培训-\(n)"]
                ledger = "trainings"
            case 17...18:
                // A photo of the project as evidence: 20 KB to 600 KB (one to three parts of a transfer).
                let path = try writePhoto(directory + "/photo-\(n).jpg", kilobytes: rng.int(20...600))
                args = ["attach", "projects", p + "proj-\(rng.int(0...4))", path, "--caption", "photo-\(n)"]
            default:
                args = ["record", "delete", "projects", p + "proj-\(rng.int(0...4))"]
                fields = [("_deleted", "n:1")]
            }
        }
        let child = try cli.start(node, args)
        var status: Int32?
        if let ms = killAfterMillis {
            usleep(UInt32(ms * 1000))
            if child.isRunning {
                child.kill9()
                count("kill9-write")
                killedWrites += 1
                log("kill -9 `\(args.prefix(3).joined(separator: " "))` on \(node.name) after \(ms) ms (unacknowledged)")
                cli.cleanUp(child)
                return
            }
            status = child.wait(seconds: 1)
        } else {
            status = child.wait(seconds: 60)
        }
        defer { cli.cleanUp(child) }
        guard status == 0 else {
            switch status {
            case 79?: refusedLocally += 1
            case 3?: notFoundWrites += 1
            case 65? where args[0] == "attach": notFoundWrites += 1  // the project was deleted
            default:
                failedWrites += 1
                log("write on \(node.name) \(status.map { "exited \($0)" } ?? "did not end in 60 s"): \(child.stderr.prefix(200))")
            }
            return
        }
        ackedWrites += 1
        if let ledger {
            ackedEntries.append(
                AckedEntry(
                    node: node, ledger: ledger, id: child.stdout.trimmingCharacters(in: .whitespacesAndNewlines), expectRefused: false,
                    county: money?.county, amountFen: money?.fen))
            return
        }
        if args[0] == "attach" {
            try acknowledgeAttachment(on: node, args, printed: child.stdout)
            return
        }
        let err = child.stderr
        guard let range = err.range(of: "as transaction "), let seq = Int(err[range.upperBound...].prefix { $0.isNumber }) else {
            throw HarnessError("acknowledged write without a transaction number: \(err)")
        }
        let (collection, id) = (args[2], args[3])
        for (field, value) in fields {
            ackedFields.append(AckedField(node: node, collection: collection, id: id, field: field, value: value, seq: seq))
        }
    }

    /// Each county records a site visit's project and attaches a photo to it (the files then
    /// travel through the faults of the steps that follow).
    func attachSitePhotos(step: Int) throws {
        for county in counties {
            let id = Self.prefix(county) + "site-\(step)"
            guard try cli.run(county, ["record", "put", "projects", id, "stage=site-visit"]).ok else { continue }
            let path = try writePhoto(directory + "/site-\(county.name)-\(step).jpg", kilobytes: rng.int(100...500))
            let args = ["attach", "projects", id, path, "--caption", "site visit"]
            let r = try cli.run(county, args)
            guard r.ok else {
                log("attach on \(county.name) exited \(r.status.map(String.init) ?? "none"): \(r.stderr.prefix(200))")
                continue
            }
            ackedWrites += 1
            try acknowledgeAttachment(on: county, args, printed: r.stdout)
        }
    }

    /// A JPEG's first bytes and the seed's noise, written to `path`.
    func writePhoto(_ path: String, kilobytes: Int) throws -> String {
        var photo: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0]
        for _ in 0..<(kilobytes * 1000 / 8) { photo += withUnsafeBytes(of: rng.next()) { Array($0) } }
        try Data(photo).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// An `attach ["attach", COLLECTION, ID, FILE, …]` that succeeded: what it printed must be the
    /// file's SHA-256; the checker then looks for the file on every node.
    func acknowledgeAttachment(on node: Node, _ args: [String], printed: String) throws {
        let sha = printed.trimmingCharacters(in: .whitespacesAndNewlines)
        guard sha == Hex.string(SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: args[3])))) else {
            throw HarnessError("attach printed \(sha), which is not the SHA-256 of the file it was given")
        }
        ackedAttachments.append(AckedAttachment(node: node, collection: args[1], id: args[2], sha256: sha))
    }

    /// `sync --peer` for a CLI-synced node, optionally killed after some milliseconds.
    func syncCLI(_ node: Node, killAfterMillis: Int? = nil, killUpstream: Node? = nil) throws {
        let proxy = route[node.name]!
        let child = try cli.start(node, ["sync", "--peer", proxy.url, "--json"] + CLI.clientOptions)
        if let ms = killAfterMillis {
            usleep(UInt32(ms * 1000))
            if let upstream = killUpstream, let serve = upstream.serve, serve.isRunning {
                serve.kill9()
                upstream.serve = nil
                count("kill9-serve-mid-sync")
                log("kill -9 \(upstream.name) serve \(ms) ms into \(node.name)'s sync (mid push/pull/apply)")
                pendingRestarts.append((upstream, rng.int(0...2)))
            } else if child.isRunning {
                child.kill9()
                count("kill9-sync-cli")
                log("kill -9 \(node.name)'s sync CLI after \(ms) ms")
                cli.cleanUp(child)
                return
            }
        }
        let status = child.wait(seconds: 60)
        if node.clockOffsetMillis != nil, status == 77 || status == 78 { skewRefusals += 1 }
        cli.cleanUp(child)
    }

    func killServe(_ node: Node) {
        guard let serve = node.serve, serve.isRunning else { return }
        serve.kill9()
        node.serve = nil
        count("kill9-serve")
        let down = rng.int(0...3)
        log("kill -9 \(node.name) serve; restart after \(down) steps")
        pendingRestarts.append((node, down))
    }

    func restartDue(all: Bool = false) throws {
        var still: [(node: Node, steps: Int)] = []
        for (node, steps) in pendingRestarts {
            if all || steps <= 0 {
                if node.serve == nil {
                    try cli.startServe(node)
                    count("restart")
                    log("restart \(node.name) serve on port \(node.port!) (same data directory)")
                }
            } else {
                still.append((node, steps - 1))
            }
        }
        pendingRestarts = still
        var open: [(proxy: Proxy, steps: Int)] = []
        for (proxy, steps) in partitions {
            if all || steps <= 0 {
                proxy.set("faults")
                log("heal partition at \(proxy.name)")
            } else {
                open.append((proxy, steps - 1))
            }
        }
        partitions = open
    }

    func setSkew(on: Bool) {
        switch (skew, on) {
        case (.none, _): return
        case (.within, true): lintan.clockOffsetMillis = 4 * 60 * 1000
        case (.beyond, true): lintan.clockOffsetMillis = Self.maxDriftMillis + 15_000
        case (.far, true): lintan.clockOffsetMillis = 2 * 86_400_000
        case (_, false): lintan.clockOffsetMillis = nil
        }
        if on {
            count("clock-skew-\(skew.rawValue)")
            log("lintan's clock set \(lintan.clockOffsetMillis! / 1000) s ahead (\(skew.rawValue) maxDrift)")
        } else {
            log("lintan's clock fixed")
        }
    }

    /// The workload with faults, `steps` actions long.
    func workload() throws {
        for step in 0..<steps {
            if step == steps / 4 { setSkew(on: true) }
            if step == steps * 3 / 4 { setSkew(on: false) }
            if step == steps / 6 || step == steps * 2 / 3 { try attachSitePhotos(step: step) }
            if step == steps / 5 { try backUpLintan() }
            if step == steps / 3 { try forgeRefusals() }
            if step == steps / 2 { try backdateRogueWork() }
            if step == steps * 2 / 5 { try equivocateGangu() }
            if step == steps * 9 / 20 && skew != .far { try runLintanOnASecondMachine() }
            if step == steps * 3 / 5 && skew != .far { try restoreLintan() }
            try restartDue()
            let roll = rng.int(0...99)
            switch roll {
            case 0...49:
                let node = rng.pick([hq, hq, relay, chengde, chengde, lintan, lintan, gangu, gangu])
                try write(on: node)
            case 50...57:
                // A conflict: HQ and the county edit the same field without hearing of each other.
                let county = rng.pick(counties)
                let id = Self.prefix(county) + "proj-\(rng.int(0...4))"
                for node in [hq, county] {
                    writeCounter += 1
                    let value = "\(node.name)-edit-\(writeCounter)"
                    let r = try cli.run(node, ["record", "put", "projects", id, "stage=\(value)"])
                    if r.ok, let range = r.stderr.range(of: "as transaction "), let seq = Int(r.stderr[range.upperBound...].prefix { $0.isNumber }) {
                        ackedWrites += 1
                        ackedFields.append(AckedField(node: node, collection: "projects", id: id, field: "stage", value: "s:\(value)", seq: seq))
                    } else {
                        unackedConcurrentEdits += 1
                        log("concurrent edit on \(node.name) not acknowledged (exit \(r.status.map(String.init) ?? "none")): \(r.stderr.prefix(200))")
                    }
                }
                count("concurrent-edit")
            case 58...71:
                let node = rng.pick([lintan, gangu])
                if rng.chance(0.3) {
                    try syncCLI(node, killAfterMillis: rng.int(20...600))
                } else {
                    try syncCLI(node)
                }
            case 72...76:
                // kill -9 the node a sync is talking to, while it is in the middle of it.
                let node = rng.pick([lintan, gangu])
                try syncCLI(node, killAfterMillis: rng.int(10...400), killUpstream: node === gangu ? relay : hq)
            case 77...82:
                killServe(rng.pick([hq, relay, chengde]))
            case 83...87:
                let node = rng.pick([hq, chengde, lintan, gangu])
                try write(on: node, kill: rng.int(0...150))
            case 88...92:
                let free = proxies.filter { p in !partitions.contains { $0.proxy === p } }
                if let proxy = free.isEmpty ? nil : rng.pick(free) {
                    proxy.set("partition")
                    let steps = rng.int(2...6)
                    partitions.append((proxy, steps))
                    count("partition")
                    log("partition at \(proxy.name) for \(steps) steps")
                }
            default:
                usleep(UInt32(rng.int(50...400) * 1000))
            }
            // Pace the steps so that the serving nodes' own syncs (every second) interleave.
            usleep(UInt32(rng.int(20...200) * 1000))
        }
    }

    // MARK: healing

    /// Removes every fault, waits out lintan's clock skew, and syncs until all vectors are equal.
    func heal() throws -> Bool {
        setSkew(on: false)
        try restartDue(all: true)
        for node in [hq, relay, chengde] where node.serve == nil || !(node.serve!.isRunning) {
            try cli.startServe(node)
            log("restart \(node.name) serve (it had exited)")
        }
        for proxy in proxies { proxy.set("pass") }
        log("heal: faults off")
        if skew == .beyond {
            // Lintan's hybrid clock stays where the skewed wall clock pushed it; peers accept its
            // transactions once they are within maxDrift of their own clocks.
            if let status = try cli.run(lintan, ["status", "--json"]).json() as? [String: Any], let clock = status["clock"] as? String,
                let millis = UInt64(clock.prefix(12), radix: 16)
            {
                let until = Int64(millis) - Self.maxDriftMillis + 1500
                let wait = max(0, until - Int64(wallMillis()))
                log("heal: lintan's clock is \(Int64(millis) - Int64(wallMillis())) ms ahead; waiting \(wait) ms for wall time to catch up")
                usleep(UInt32(min(wait, 60_000) * 1000))
            }
        }
        if skew == .far {
            // The clock is right again: the work it stamped two days ahead is recorded again.
            let r = try cli.run(lintan, ["repair-clock", "--json"])
            if r.status == 0 { lintanRewritten = true }
            log(
                "heal: lintan repair-clock exited \(r.status.map(String.init) ?? "(timed out)"): \(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))"
            )
        }
        usleep(300_000)
        let deadline = Date().addingTimeInterval(150)
        for round in 1...40 {
            for node in [lintan, chengde, relay, gangu, relay] {
                _ = try cli.run(node, ["sync", "--peer", route[node.name]!.url] + CLI.clientOptions)
            }
            let vectors = try nodes.map { try cli.must($0, ["vector", "--json"]).stdout }
            if Set(vectors).count == 1 {
                log("heal: all vectors equal after \(round) final sync rounds")
                try healFiles()
                return true
            }
            if Date() > deadline { break }
        }
        log("heal: vectors still differ")
        return false
    }

    /// The attached files follow their records at each round: rounds until no node lacks one
    /// (the checker then says which are missing, if any still are).
    func healFiles() throws {
        for round in 1...10 {
            let missing = try nodes.map { node -> Int in
                let status = try cli.must(node, ["status", "--json"]).json() as? [String: Any]
                return (status?["files"] as? [String: Int])?["missing"] ?? 0
            }
            if missing.allSatisfy({ $0 == 0 }) {
                log("heal: every attached file on every node after \(round - 1) more rounds")
                return
            }
            for node in [lintan, chengde, relay, gangu, relay] {
                _ = try cli.run(node, ["sync", "--peer", route[node.name]!.url] + CLI.clientOptions, timeout: 180)
            }
        }
        log("heal: attached files still missing after 10 rounds")
    }

    /// Stops every process of the run and counts the proxies' faults; only the first call acts.
    func tearDown() {
        guard !tornDown else { return }
        tornDown = true
        for node in nodes {
            node.serve?.stop()
            node.serve = nil
        }
        for proxy in proxies {
            for (kind, n) in proxy.faultCounts() where kind != "pass" { faults["proxy-" + kind, default: 0] += n }
            proxy.child.stop(grace: 2)
        }
    }
}
