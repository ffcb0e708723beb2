import Crypto
import Foundation
import SyncNode
import SyncProtocol
import Testing

/// Issue 26, item 2: photos and PDFs attached to records as evidence, through the real binary
/// and a real `serve` over HTTP.
@Suite(.serialized) struct AttachmentTests {
    /// A JPEG's first bytes and `size` more of noise (several parts of a transfer).
    static func photo(_ path: String, size: Int, seed: UInt8) throws -> [UInt8] {
        var bytes: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0]
        var x = UInt32(seed) &* 2_654_435_761 &+ 1
        for _ in 0..<size {
            x = x &* 1_103_515_245 &+ 12345
            bytes.append(UInt8(truncatingIfNeeded: x >> 16))
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return bytes
    }

    /// Records project `id` at `data` and attaches a photo of `size` bytes to it: the photo's
    /// bytes and what `attach` answered.
    static func attachedProject(_ data: String, _ id: String, file: String, size: Int, seed: UInt8, _ extra: [String] = []) throws
        -> (bytes: [UInt8], answer: Binary.Result)
    {
        #expect(try Binary.run(["record", "put", "--data", data, "projects", id, "name=\(id)"]).status == 0)
        let bytes = try photo(file, size: size, seed: seed)
        return (bytes, try Binary.run(["attach", "--data", data, "projects", id, file] + extra))
    }

    static func sha(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

    static func list(_ data: String, _ collection: String, _ id: String) throws -> [[String: Any]] {
        try jsonOutput(["attachment", "list", "--data", data, collection, id, "--json"]) as? [[String: Any]] ?? []
    }

    /// An unsealed bundle with one byte of the PDF's spaces changed and its checksum made again:
    /// what a liar with the file could make.
    static func alteredFile(in bundle: [UInt8], sha: String) throws -> [UInt8] {
        var lines: [ArraySlice<UInt8>] = []
        var rest = bundle[...]
        for _ in 0..<3 {
            let nl = rest.firstIndex(of: 0x0A)!
            lines.append(rest[rest.startIndex..<nl])
            rest = rest[(nl + 1)...]
        }
        var body = try Gzip.decompress(Array(rest), maxSize: 1 << 30)
        let marker = Array("%PDF-1.7\n".utf8)
        guard let at = (0..<(body.count - marker.count)).first(where: { Array(body[$0..<$0 + marker.count]) == marker }) else {
            throw TestFailure("no PDF in the bundle")
        }
        body[at + marker.count + 100] = 0x21
        let compressed = Gzip.compress(body)
        var hasher = SHA256()
        hasher.update(data: Array(lines[1]))
        hasher.update(data: [0x0A])
        hasher.update(data: compressed)
        let sum = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        return Array(lines[0]) + [0x0A] + Array(lines[1]) + [0x0A] + Array("sha256 \(sum)\n".utf8) + compressed
    }

    static func stored(_ data: String, _ sha: String) -> String { "\(data)/attachments/\(sha.prefix(2))/\(sha)" }

    /// A county's photo reaches HQ over HTTP after its record, byte for byte, and another county
    /// fetches it from HQ; a county attaching to another's record gets 79, and nothing is kept.
    @Test func aPhotoTravelsAfterItsRecordByteForByteAndFollowsTheRecordsPolicy() throws {
        let net = try ServedNetwork(counties: ["lintan", "gangu"])
        defer { net.stop() }
        let lintan = net["lintan"]
        let file = net.dir.path("site.jpg").path
        let (bytes, attached) = try Self.attachedProject(
            lintan, "lt-1", file: file, size: 700_000, seed: 1, ["--caption", "施工现场", "--location", "34.69,103.35"])
        #expect(attached.status == 0, "\(attached.stderr)")
        let sha = attached.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(sha == Self.sha(bytes))
        #expect(attached.stderr.contains("to projects/lt-1 as transaction"))

        let synced = try net.sync("lintan")
        #expect(synced.status == 0, "\(synced.stderr)")
        #expect(synced.stderr.contains("attached files: sent 1"), "\(synced.stderr)")
        let atHQ = try Self.list(net.hq, "projects", "lt-1")
        #expect(atHQ.count == 1)
        #expect(atHQ.first?["held"] as? Bool == true)
        #expect(atHQ.first?["caption"] as? String == "施工现场")
        #expect(atHQ.first?["bytes"] as? Int == bytes.count)
        #expect(atHQ.first?["latitude"] as? Double == 34.69)
        let copy = net.dir.path("copy.jpg").path
        #expect(try Binary.run(["attachment", "get", "--data", net.hq, sha, "--out", copy]).status == 0)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: copy))) == bytes)

        // Gangu gets the record from HQ, and then the file, fetched from HQ.
        let gangu = net["gangu"]
        let ganguSync = try net.sync("gangu")
        #expect(ganguSync.status == 0, "\(ganguSync.stderr)")
        #expect(ganguSync.stderr.contains("attached files: sent 0, received 1,"), "\(ganguSync.stderr)")
        let ganguCopy = net.dir.path("gangu.jpg").path
        #expect(try Binary.run(["attachment", "get", "--data", gangu, sha, "--out", ganguCopy]).status == 0)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: ganguCopy))) == bytes)

        // Gangu may not attach to Lintan's project: 79, and its file is not kept.
        let other = net.dir.path("other.jpg").path
        let otherBytes = try Self.photo(other, size: 10_000, seed: 2)
        let vectorBefore = try Binary.run(["vector", "--data", gangu, "--json"]).stdout
        let refused = try Binary.run(["attach", "--data", gangu, "projects", "lt-1", other])
        #expect(refused.status == 79, "\(refused.stderr)")
        #expect(refused.stderr.contains("may not write lintan project lt-1"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: Self.stored(gangu, Self.sha(otherBytes))))
        #expect(try Binary.run(["vector", "--data", gangu, "--json"]).stdout == vectorBefore)
        #expect(try Self.list(gangu, "projects", "lt-1").count == 1)

        // Lintan restored from its backup (which holds no files) fetches its photo back from HQ.
        let backup = net.dir.path("lintan.backup").path
        let backedUp = try Binary.run(["backup", "--data", lintan, "--out", backup])
        #expect(backedUp.stderr.contains("the 1 attached files"), "\(backedUp.stderr)")
        let restored = net.dir.path("lintan-restored").path
        #expect(try Binary.run(["restore", backup, "--data", restored]).status == 0)
        #expect(try Self.list(restored, "projects", "lt-1").first?["held"] as? Bool == false)
        let back = try Binary.run(["sync", "--data", restored])
        #expect(back.stderr.contains("attached files: sent 0, received 1,"), "\(back.stderr)")
        let restoredCopy = net.dir.path("restored.jpg").path
        #expect(try Binary.run(["attachment", "get", "--data", restored, sha, "--out", restoredCopy]).status == 0)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: restoredCopy))) == bytes)
    }

    /// Each kind of bad input is refused with a clear message, its exit code, and nothing kept.
    @Test func badFilesAreRefusedWithTheirExitCodesAndNothingIsKept() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let data = dir.path("hq").path
        try Federation.hq(data)
        #expect(try Binary.run(["record", "put", "--data", data, "projects", "p-1", "name=clinic"]).status == 0)
        let vector = try Binary.run(["vector", "--data", data, "--json"]).stdout

        let big = dir.path("big.jpg").path
        _ = try Self.photo(big, size: 1_500_000, seed: 3)
        let tooLarge = try Binary.run(["attach", "--data", data, "projects", "p-1", big], environment: ["SYNCNODE_ATTACHMENT_MAX_MB": "1"])
        #expect(tooLarge.status == 65)
        #expect(tooLarge.stderr.contains("is larger than the 1.0 MB a file may be"), "\(tooLarge.stderr)")

        let text = dir.path("notes.txt").path
        try Data("not a photo".utf8).write(to: URL(fileURLWithPath: text))
        let wrongKind = try Binary.run(["attach", "--data", data, "projects", "p-1", text])
        #expect(wrongKind.status == 65)
        #expect(wrongKind.stderr.contains("is not a photo (JPEG, PNG, WebP or HEIC) or a PDF file"), "\(wrongKind.stderr)")

        let missingFile = try Binary.run(["attach", "--data", data, "projects", "p-1", dir.path("nowhere.jpg").path])
        #expect(missingFile.status == 65)
        #expect(missingFile.stderr.contains("cannot read"), "\(missingFile.stderr)")

        let noRecord = try Binary.run(["attach", "--data", data, "projects", "p-404", big])
        #expect(noRecord.status == 3)
        #expect(noRecord.stderr.contains("no projects record p-404 is held here"), "\(noRecord.stderr)")

        let quota = try Binary.run(["attach", "--data", data, "projects", "p-1", big], environment: ["SYNCNODE_ATTACHMENT_QUOTA_MB": "1"])
        #expect(quota.status == 65)
        #expect(quota.stderr.contains("may keep 1.0 MB"), "\(quota.stderr)")

        let badLocation = try Binary.run(["attach", "--data", data, "projects", "p-1", big, "--location", "north"])
        #expect(badLocation.status == 65)

        let absent = try Binary.run(["attachment", "get", "--data", data, String(repeating: "ab", count: 32), "--out", dir.path("x").path])
        #expect(absent.status == 3)
        #expect(absent.stderr.contains("is not held here"))
        let notASHA = try Binary.run(["attachment", "get", "--data", data, "cafe", "--out", dir.path("x").path])
        #expect(notASHA.status == 64)

        #expect(try Binary.run(["vector", "--data", data, "--json"]).stdout == vector, "a refused attach recorded something")
        let kept = (try? FileManager.default.subpathsOfDirectory(atPath: "\(data)/attachments")) ?? []
        #expect(kept.filter { $0.count > 64 && !$0.hasPrefix("partial") }.isEmpty, "files kept: \(kept)")
        #expect(try Self.list(data, "projects", "p-1").isEmpty)
    }

    /// A file damaged or cut short on the way is thrown away and fetched again at the next round;
    /// one damaged on its sender's disk is not taken by HQ, and `attachment get` says so (74).
    @Test func aDamagedOrTruncatedFileIsRefusedAndFetchedAgain() throws {
        let net = try ServedNetwork(counties: ["lintan", "gangu"])
        defer { net.stop() }
        let lintan = net["lintan"]
        let file = net.dir.path("site.jpg").path
        let (bytes, attached) = try Self.attachedProject(lintan, "lt-2", file: file, size: 400_000, seed: 4)
        let sha = attached.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try net.sync("lintan").status == 0)
        let atHQ = URL(fileURLWithPath: Self.stored(net.hq, sha))
        #expect(Array(try Data(contentsOf: atHQ)) == bytes)

        // HQ's copy altered (one byte), then cut short: Gangu throws each away and keeps nothing.
        var altered = bytes
        altered[200_000] ^= 0xFF
        try Data(altered).write(to: atHQ)
        let first = try net.sync("gangu")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("; 1 damaged"), "\(first.stderr)")
        #expect(try Self.list(net["gangu"], "projects", "lt-2").first?["held"] as? Bool == false)
        let waiting = try jsonOutput(["status", "--data", net["gangu"], "--json"]) as? [String: Any]
        #expect((waiting?["files"] as? [String: Int]) == ["held": 0, "bytes": 0, "missing": 1], "\(String(describing: waiting?["files"]))")
        #expect(
            try Binary.run(["status", "--data", net["gangu"]]).stdout.contains("attached files: 0 here (0 B), 1 named by records here still to come"))
        try Data(bytes.prefix(300_000)).write(to: atHQ)
        let second = try net.sync("gangu")
        #expect(second.stderr.contains("; 1 damaged"), "\(second.stderr)")
        // What came of the short copy is a right beginning: kept (the next round goes on from it),
        // the file itself not placed.
        let partial = "\(net["gangu"])/attachments/partial/\(sha)"
        #expect(Array((try? Data(contentsOf: URL(fileURLWithPath: partial))) ?? Data()) == Array(bytes.prefix(300_000)))
        #expect(!FileManager.default.fileExists(atPath: Self.stored(net["gangu"], sha)))

        // HQ's copy right again: the next round fetches all of it.
        try Data(bytes).write(to: atHQ)
        let third = try net.sync("gangu")
        #expect(third.stderr.contains("attached files: sent 0, received 1,"), "\(third.stderr)")
        let copy = net.dir.path("copy.jpg").path
        #expect(try Binary.run(["attachment", "get", "--data", net["gangu"], sha, "--out", copy]).status == 0)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: copy))) == bytes)
        let arrived = try jsonOutput(["status", "--data", net["gangu"], "--json"]) as? [String: Any]
        #expect((arrived?["files"] as? [String: Int]) == ["held": 1, "bytes": bytes.count, "missing": 0])

        // A file damaged on its own node's disk: `attachment get` refuses it, and HQ does not take it.
        let (clinic, clinicAttached) = try Self.attachedProject(lintan, "lt-3", file: file, size: 50_000, seed: 5)
        let sha3 = clinicAttached.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        var rotten = clinic
        rotten[1000] ^= 0x01
        try Data(rotten).write(to: URL(fileURLWithPath: Self.stored(lintan, sha3)))
        let get = try Binary.run(["attachment", "get", "--data", lintan, sha3, "--out", copy])
        #expect(get.status == 74, "\(get.stderr)")
        #expect(get.stderr.contains("no longer matches its SHA-256"))
        let sync = try net.sync("lintan")
        #expect(sync.status == 0)
        #expect(sync.stderr.contains("; 1 damaged"), "\(sync.stderr)")
        #expect(try Self.list(net.hq, "projects", "lt-3").first?["held"] as? Bool == false)
    }
}

/// A county with no network: its photos go to HQ in a bundle with their records, byte for byte,
/// sealed as the bundle is; HQ's bundle brings them to another county; a bound leaves files out
/// and says so; a bundle whose file was altered keeps its records and not the file.
@Suite struct AttachmentBundleTests {
    @Test func photosTravelInBundlesByteForByteWithinTheirBound() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (hq, lintan) = try Federation.hqAndLintan(in: dir)
        let gangu = dir.path("gangu").path
        try Federation.member(gangu, site: "gangu", label: "gangu-1", hq: hq)
        // Lintan learns the registry from HQ by a bundle first (so it can seal for HQ).
        let fromHQ = dir.path("hq.bundle").path
        #expect(try Binary.run(["bundle", "export", "--data", hq, "--out", fromHQ]).status == 0)
        #expect(try Binary.run(["bundle", "import", "--data", lintan, fromHQ]).status == 0)
        #expect(try Binary.run(["record", "put", "--data", lintan, "projects", "lt-7", "name=trade centre"]).status == 0)
        let one = dir.path("one.jpg").path
        let two = dir.path("two.pdf").path
        let oneBytes = try AttachmentTests.photo(one, size: 2_500_000, seed: 7)  // three frames of a bundle
        var twoBytes = Array("%PDF-1.7\n".utf8)
        twoBytes += [UInt8](repeating: 0x20, count: 5000)
        try Data(twoBytes).write(to: URL(fileURLWithPath: two))
        let shaOne = try Binary.run(["attach", "--data", lintan, "projects", "lt-7", one]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let shaTwo = try Binary.run(["attach", "--data", lintan, "projects", "lt-7", two, "--caption", "验收单"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)

        // Bounded: 1 MiB of files leaves the photo out, and says so.
        let small = dir.path("small.bundle").path
        let bounded = try Binary.run(["bundle", "export", "--data", lintan, "--out", small, "--max-files-mb", "1", "--json"])
        let boundedReport = try JSONSerialization.jsonObject(with: Data(bounded.stdout.utf8)) as? [String: Any] ?? [:]
        #expect(boundedReport["files"] as? Int == 1)
        #expect(boundedReport["filesLeftOut"] as? Int == 1)

        let full = dir.path("lintan.bundle").path
        let export = try Binary.run(["bundle", "export", "--data", lintan, "--out", full])
        #expect(export.status == 0, "\(export.stderr)")
        #expect(export.stderr.contains("and 2 attached files"), "\(export.stderr)")
        let imported = try Binary.run(["bundle", "import", "--data", hq, full])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stderr.contains("kept 2 attached files"), "\(imported.stderr)")
        for (sha, bytes) in [(shaOne, oneBytes), (shaTwo, twoBytes)] {
            let out = dir.path("out-\(sha.prefix(6))").path
            #expect(try Binary.run(["attachment", "get", "--data", hq, sha, "--out", out]).status == 0)
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: out))) == bytes)
        }
        // Importing again keeps nothing twice and changes nothing.
        let again = try Binary.run(["bundle", "import", "--data", hq, full, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any])?["files"] as? Int == 0)

        // HQ's bundle carries Lintan's files on to Gangu (sealed for every node).
        let onward = dir.path("onward.bundle").path
        #expect(try Binary.run(["bundle", "export", "--data", hq, "--out", onward]).status == 0)
        let atGangu = try Binary.run(["bundle", "import", "--data", gangu, onward])
        #expect(atGangu.stderr.contains("kept 2 attached files"), "\(atGangu.stderr)")
        let list = try AttachmentTests.list(gangu, "projects", "lt-7")
        #expect(list.count == 2 && list.allSatisfy { $0["held"] as? Bool == true })

        // An unsealed bundle whose photo was altered (and its checksum made again by the liar): the
        // records are kept, the file is not.
        let plain = dir.path("plain.bundle").path
        let chengde = dir.path("chengde").path
        try Federation.member(chengde, site: "chengde", label: "chengde-1", hq: hq)
        #expect(try Binary.run(["bundle", "export", "--data", hq, "--out", plain, "--unsealed"]).status == 0)
        let forged = try AttachmentTests.alteredFile(in: try Array(Data(contentsOf: URL(fileURLWithPath: plain))), sha: shaTwo)
        try Data(forged).write(to: URL(fileURLWithPath: plain))
        let atChengde = try Binary.run(["bundle", "import", "--data", chengde, plain])
        #expect(atChengde.status == 0, "\(atChengde.stderr)")
        #expect(atChengde.stderr.contains("1 not kept"), "\(atChengde.stderr)")
        let chengdeList = try AttachmentTests.list(chengde, "projects", "lt-7")
        #expect(chengdeList.count == 2)
        #expect(chengdeList.first { $0["sha256"] as? String == shaTwo }?["held"] as? Bool == false)
        #expect(chengdeList.first { $0["sha256"] as? String == shaOne }?["held"] as? Bool == true)
    }
}

/// A bundle whose header lists files of impossible sizes (a count of frames that would overflow)
/// is refused whole, with exit 65 and nothing applied, never a crash.
@Suite struct AttachmentBundleHeaderTests {
    @Test func aHeaderClaimingImpossibleFileSizesIsRefused() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let lintan = try Federation.hqAndLintan(in: dir).lintan
        let vector = try Binary.run(["vector", "--data", lintan, "--json"]).stdout
        for (bytes, transactions) in [(Int.max, 0), (1000, Int.max), (-5, 0), (0, 0)] {
            var header = BundleFile.Header(
                format: 1, protocolVersion: 2, from: NodeID(high: 1, low: 2), site: "hq", label: "liar", created: 0, since: VersionVector(),
                vector: VersionVector(), transactions: transactions)
            header.files = [BundleFile.FileEntry(sha256: String(repeating: "ab", count: 32), bytes: bytes)]
            let file = dir.path("liar-\(bytes)-\(transactions).bundle").path
            try Data(try BundleFile(header: header, transactions: []).encoded()).write(to: URL(fileURLWithPath: file))
            let imported = try Binary.run(["bundle", "import", "--data", lintan, file])
            #expect(imported.status == 65, "\(bytes) \(transactions): \(imported.stderr)")
            #expect(imported.stderr.contains("not usable"), "\(imported.stderr)")
        }
        #expect(try Binary.run(["vector", "--data", lintan, "--json"]).stdout == vector)
    }
}

/// The attachment routes as a stranger or a lying node would use them: each is refused with its
/// status, and nothing is kept.
@Suite struct AttachmentAPITests {
    @Test func lyingOrMalformedFileRequestsAreRefused() async throws {
        let net = try ServedNetwork(counties: ["gangu"])
        defer { net.stop() }
        let gangu = try Forger(data: net["gangu"])
        let url = net.server.url
        func post(_ path: String, _ body: [UInt8], signer: Forger? = nil) async throws -> (status: Int, text: String) {
            let headers = try (signer ?? gangu).headers(method: "POST", path: path, body: body)
            let answer = try await gangu.client.send(method: "POST", url: url + path, headers: headers, body: body)
            return (answer.status, String(decoding: answer.body, as: UTF8.self))
        }
        let stranger = String(repeating: "5a", count: 32)
        // A file no record names: not taken.
        let part = BatchCodec.encode(header: try WireCodec.encodeMessage(AttachmentPart(sha256: stranger, offset: 0)), frames: [[0xFF, 0xD8, 0xFF]])
        let unnamed = try await post("/v1/attachments/upload", part)
        #expect(unnamed.status == 409)
        #expect(unnamed.text.contains("no attachment record held here names file"))
        // Not a SHA-256, a negative offset, a part too large, not a part at all.
        let notSHA = BatchCodec.encode(header: try WireCodec.encodeMessage(AttachmentPart(sha256: "../../node.key", offset: 0)), frames: [[1]])
        #expect(try await post("/v1/attachments/upload", notSHA).status == 400)
        let negative = BatchCodec.encode(header: try WireCodec.encodeMessage(AttachmentPart(sha256: stranger, offset: -5)), frames: [[1]])
        #expect(try await post("/v1/attachments/upload", negative).status == 400)
        let huge = BatchCodec.encode(
            header: try WireCodec.encodeMessage(AttachmentPart(sha256: stranger, offset: 0)), frames: [[UInt8](repeating: 7, count: 300 * 1024)])
        let tooLarge = try await post("/v1/attachments/upload", huge)
        #expect(tooLarge.status == 413, "\(tooLarge.text)")
        #expect(try await post("/v1/attachments/upload", Array("hello".utf8)).status == 400)
        // Fetches: a path for a name, a file not held, nonsense.
        let traversal = try WireCodec.encodeMessage(AttachmentFetch(sha256: "../node.key", offset: 0, maxBytes: 100))
        #expect(try await post("/v1/attachments/fetch", traversal).status == 400)
        let absent = try await post("/v1/attachments/fetch", try WireCodec.encodeMessage(AttachmentFetch(sha256: stranger, offset: 0, maxBytes: 100)))
        #expect(absent.status == 404)
        #expect(try await post("/v1/attachments/fetch", Array("{".utf8)).status == 400)
        // A node nobody approved, and no signature at all.
        let missing = try await post("/v1/attachments/missing", [], signer: Forger())
        #expect(missing.status == 401 || missing.status == 403, "\(missing)")
        let unsigned = try await gangu.client.send(method: "POST", url: url + "/v1/attachments/missing", body: [])
        #expect(unsigned.status == 401, "\(unsigned.status)")
        let kept = (try? FileManager.default.subpathsOfDirectory(atPath: "\(net.hq)/attachments")) ?? []
        #expect(kept.filter { !$0.hasPrefix("partial") || $0.count > "partial".count }.isEmpty, "kept: \(kept)")
    }

    /// A county that names files it never finishes sending cannot fill HQ's disk: what HQ holds
    /// of its half-sent files counts against its quota, and a file past it is refused (413).
    @Test func halfSentFilesCountAgainstTheirNodesQuota() async throws {
        let net = try ServedNetwork(counties: ["gangu"], environment: ["SYNCNODE_ATTACHMENT_QUOTA_MB": "1"])
        defer { net.stop() }
        let (hq, server) = (net.hq, net.server)
        let forger = try Forger(data: net["gangu"])
        let (a, b) = (String(repeating: "1a", count: 32), String(repeating: "2b", count: 32))
        let changes: [Change] = [a, b].map { sha in
            .set(FieldWrite(collection: Attachment.collection, recordID: "projects/gg-1/\(sha)", field: Attachment.Field.bytes, value: .int(800_000)))
        }
        let pushed = try await forger.push(
            server.url, frames: [try forger.transaction(seq: 1, millis: UInt64(Date().timeIntervalSince1970 * 1000), changes).frame])
        #expect(pushed.status == 200)
        func upload(_ sha: String, _ offset: Int, _ count: Int) async throws -> Int {
            let body = BatchCodec.encode(
                header: try WireCodec.encodeMessage(AttachmentPart(sha256: sha, offset: offset)), frames: [[UInt8](repeating: 9, count: count)])
            let headers = try forger.headers(method: "POST", path: "/v1/attachments/upload", body: body)
            return try await forger.client.send(method: "POST", url: server.url + "/v1/attachments/upload", headers: headers, body: body).status
        }
        for offset in stride(from: 0, to: 600_000, by: 200_000) { #expect(try await upload(a, offset, 200_000) == 200) }
        // 600 KB of A half received (never finished) + 800 KB of B would pass the 1 MiB quota.
        #expect(try await upload(b, 0, 200_000) == 413)
        #expect(!FileManager.default.fileExists(atPath: "\(hq)/attachments/partial/\(b)"))
    }
}
