import Crypto
import Foundation
import SyncNode
import SyncProtocol

/// The adversarial actors of a run (issue 15). They act as an attacker or an unlucky site would,
/// from outside: files they write, the command line, a stolen or a revoked key. The checker then
/// requires what it requires of every run: nothing acknowledged lost, every node identical.
extension ChaosRun {
    /// A bundle anyone can write, no key needed: unsigned refusal statements for lintan's next
    /// three transactions, claiming to come from HQ, imported at HQ and at the relay. Before
    /// protocol 3 this made every node skip lintan's next work for good.
    func forgeRefusals() throws {
        let vector = try cli.must(lintan, ["vector", "--json"]).json() as? [String: Int] ?? [:]
        guard let origin = NodeID(hex: lintan.id) else { return }
        let next = UInt64(vector[lintan.id] ?? 0) + 1
        let items = (next..<next + 3).map { seq in
            ReceivedTransaction(
                transaction: Transaction(origin: origin, seq: seq, hlc: Timestamp(millis: 1, counter: 0, node: origin), changes: []), body: [],
                refusal: Refusal(origin: origin, seq: seq, reason: "refused: policy", refusedBy: "dongli-hq"))
        }
        let file = try writeBundle(items, claimedFrom: hq, name: "forged-refusals")
        for node in [hq, relay] {
            let r = try cli.run(node, ["bundle", "import", file])
            if r.status != 80 {
                throw HarnessError(
                    "\(node.name) imported forged refusals with exit \(r.status.map(String.init) ?? "(timed out)"), not 80: \(r.stderr)")
            }
        }
        count("adversary-forged-refusals")
        log("adversary: a bundle of unsigned refusals for lintan's transactions \(next)–\(next + 2) imported at hq and the relay")
    }

    /// A node HQ approved, that records work, then is revoked: afterwards it signs work with a
    /// clock just after its last accepted transaction (as if made before the revocation) and hands
    /// it to the relay and HQ in a bundle. No node may apply it.
    func setUpRogue() throws {
        let info =
            try cli.must(rogue, ["init", "--site", "lintan", "--role", "county", "--trust", hq.publicKey, "--label", "rogue", "--json"]).json()
            as? [String: Any] ?? [:]
        rogue.id = info["node"] as? String ?? ""
        rogue.publicKey = info["publicKey"] as? String ?? ""
        try cli.must(hq, ["node", "approve", rogue.id, "--key", rogue.publicKey, "--site", "lintan", "--role", "county", "--label", "rogue"])
        // The rogue's approval must reach it, and its work HQ, before the revocation.
        try cli.must(rogue, ["sync", "--peer", "http://127.0.0.1:\(hq.port!)"] + CLI.clientOptions)
        for i in 1...2 {
            let r = try cli.must(rogue, ["record", "put", "projects", "lt-rogue-\(i)", "stage=before-revocation-\(i)"])
            guard let range = r.stderr.range(of: "as transaction "), let seq = Int(r.stderr[range.upperBound...].prefix { $0.isNumber }) else {
                throw HarnessError("the rogue's write was not acknowledged: \(r.stderr)")
            }
            ackedWrites += 1
            ackedFields.append(
                AckedField(node: rogue, collection: "projects", id: "lt-rogue-\(i)", field: "stage", value: "s:before-revocation-\(i)", seq: seq))
        }
        try cli.must(rogue, ["sync", "--peer", "http://127.0.0.1:\(hq.port!)"] + CLI.clientOptions)
        try cli.must(hq, ["node", "revoke", rogue.id])
        log("adversary: rogue approved, recorded 2 writes, synced; hq revoked it")
    }

    func backdateRogueWork() throws {
        guard let origin = NodeID(hex: rogue.id),
            let status = try cli.must(rogue, ["status", "--json"]).json() as? [String: Any], let clock = status["clock"] as? String,
            let millis = UInt64(clock.prefix(12), radix: 16),
            let vector = status["vector"] as? [String: Int], let seq = vector[rogue.id]
        else { throw HarnessError("cannot read the rogue's state") }
        let key = try Curve25519.Signing.PrivateKey(
            rawRepresentation: Hex.bytes(
                try String(contentsOfFile: rogue.data + "/node.key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!)
        var items: [ReceivedTransaction] = []
        for k in 1...2 {
            let t = Transaction(
                origin: origin, seq: UInt64(seq + k), hlc: Timestamp(millis: millis + UInt64(k), counter: 0, node: origin),
                changes: [.set(FieldWrite(collection: "projects", recordID: "lt-rogue-late-\(k)", field: "stage", value: .text("back-dated")))])
            let body = WireCodec.encode(t)
            var item = try ReceivedTransaction(body: body)
            item.signature = [UInt8](try key.signature(for: Array("syncnode-tx-v2\n".utf8) + Array(SHA256.hash(data: body))))
            items.append(item)
        }
        let file = try writeBundle(items, claimedFrom: rogue, name: "rogue-backdated")
        for node in [relay, hq] { _ = try cli.run(node, ["bundle", "import", file]) }
        count("adversary-revoked-backdating")
        log("adversary: the revoked rogue's back-dated transactions \(seq + 1)–\(seq + 2) imported at the relay and hq")
    }

    /// Lintan's data directory is copied now, to be restored later (`restoreLintan`).
    func backUpLintan() throws {
        try? FileManager.default.removeItem(atPath: lintanBackup)
        try FileManager.default.copyItem(atPath: lintan.data, toPath: lintanBackup)
        log("adversary: lintan backed up")
    }

    /// Lintan is restored from the older copy after its later work reached HQ (work no peer held
    /// is lost with a disk however it is restored), and goes on recording: its next sync must
    /// take back its own later transactions and record again what it wrote meanwhile.
    func restoreLintan() throws {
        guard FileManager.default.fileExists(atPath: lintanBackup) else { return }
        var synced = false
        for _ in 0..<5 where !synced {
            synced = try cli.run(lintan, ["sync", "--peer", "http://127.0.0.1:\(hq.port!)"] + CLI.clientOptions).status == 0
        }
        guard synced else {
            log("adversary: lintan not restored (its work could not reach hq first)")
            return
        }
        // The database from the older copy; the attached files as the operator's file backup of
        // DATA/attachments/ keeps them (docs/OPERATIONS.md): every file, never changed once written.
        let files = directory + "/lintan-files"
        try? FileManager.default.removeItem(atPath: files)
        if FileManager.default.fileExists(atPath: lintan.data + "/attachments") {
            try FileManager.default.copyItem(atPath: lintan.data + "/attachments", toPath: files)
        }
        try FileManager.default.removeItem(atPath: lintan.data)
        try FileManager.default.copyItem(atPath: lintanBackup, toPath: lintan.data)
        if FileManager.default.fileExists(atPath: files) {
            try? FileManager.default.removeItem(atPath: lintan.data + "/attachments")
            try FileManager.default.copyItem(atPath: files, toPath: lintan.data + "/attachments")
        }
        lintanRewritten = true
        count("adversary-restore-older-copy")
        log("adversary: lintan restored from its older copy")
    }

    /// Gangu's operator signs, with Gangu's own key, another transaction under Gangu's last
    /// number (a later clock, another value) and hands it to Chengde in a bundle (issue 23, item 1).
    /// Every node must end with the history HQ accepted first; HQ must hold the other as evidence.
    func equivocateGangu() throws {
        guard let origin = NodeID(hex: gangu.id),
            let status = try cli.must(gangu, ["status", "--json"]).json() as? [String: Any], let clock = status["clock"] as? String,
            let millis = UInt64(clock.prefix(12), radix: 16),
            let vector = status["vector"] as? [String: Int], let seq = vector[gangu.id], seq > 0
        else { return }
        let key = try Curve25519.Signing.PrivateKey(
            rawRepresentation: Hex.bytes(
                try String(contentsOfFile: gangu.data + "/node.key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!)
        let t = Transaction(
            origin: origin, seq: UInt64(seq), hlc: Timestamp(millis: millis + 1, counter: 0, node: origin),
            changes: [.set(FieldWrite(collection: "projects", recordID: "gg-fork-\(seq)", field: "stage", value: .text("the other history")))])
        let body = WireCodec.encode(t)
        var item = try ReceivedTransaction(body: body)
        item.signature = [UInt8](try key.signature(for: Array("syncnode-tx-v2\n".utf8) + Array(SHA256.hash(data: body))))
        let file = try writeBundle([item], claimedFrom: gangu, name: "gangu-other-history")
        // Refused (a gap, a clock) or applied as Chengde's copy of Gangu's transaction: either way
        // the replicas must end with one history.
        _ = try cli.run(chengde, ["bundle", "import", file])
        ganguRewritten = true
        count("adversary-equivocation")
        log("adversary: gangu signed another transaction under its number \(seq) and handed it to chengde")
    }

    /// Lintan's data directory copied to a second machine while the first keeps running (a backup
    /// restored elsewhere, a stolen copy): the second records two writes and syncs with HQ; the
    /// first goes on. Both machines' acknowledged writes must survive (issue 23, item 10).
    func runLintanOnASecondMachine() throws {
        let second = Node(name: "lintan-second", site: lintan.site, role: lintan.role, data: directory + "/lintan-second")
        second.id = lintan.id
        second.publicKey = lintan.publicKey
        second.clockOffsetMillis = lintan.clockOffsetMillis
        try? FileManager.default.removeItem(atPath: second.data)
        try FileManager.default.copyItem(atPath: lintan.data, toPath: second.data)
        for i in 1...2 {
            let r = try cli.must(second, ["record", "put", "projects", "lt-second-\(i)", "stage=second-machine-\(i)"])
            guard let range = r.stderr.range(of: "as transaction "), let seq = Int(r.stderr[range.upperBound...].prefix { $0.isNumber }) else {
                throw HarnessError("the second machine's write was not acknowledged: \(r.stderr)")
            }
            ackedWrites += 1
            ackedFields.append(
                AckedField(node: second, collection: "projects", id: "lt-second-\(i)", field: "stage", value: "s:second-machine-\(i)", seq: seq))
        }
        var synced = false
        for _ in 0..<5 where !synced {
            synced = try cli.run(second, ["sync", "--peer", "http://127.0.0.1:\(hq.port!)"] + CLI.clientOptions).status == 0
        }
        guard synced else {
            // Work that never left a machine nobody runs any more is lost with it, as a disk is.
            ackedFields.removeLast(2)
            ackedWrites -= 2
            log("adversary: lintan's second machine could not reach hq; its two writes are not counted")
            return
        }
        lintanSecond = second
        // Lintan's own writes since the copy are recorded again under new numbers when it meets
        // the second machine's history: they are found by value, not by number.
        lintanRewritten = true
        count("adversary-second-machine")
        log("adversary: lintan's identity ran on a second machine: 2 writes, synced with hq")
    }

    private func writeBundle(_ items: [ReceivedTransaction], claimedFrom: Node, name: String) throws -> String {
        let header = BundleFile.Header(
            format: 1, protocolVersion: WireCodec.protocolVersion, from: NodeID(hex: claimedFrom.id)!, site: claimedFrom.site,
            label: claimedFrom.name,
            created: 0, since: VersionVector(), vector: VersionVector(), transactions: items.count)
        let path = directory + "/\(name).bundle"
        try Data(try BundleFile(header: header, transactions: items).encoded()).write(to: URL(fileURLWithPath: path))
        return path
    }
}
