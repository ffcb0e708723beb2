import Crypto
import Foundation
import SyncProtocol
import Testing

@testable import SyncNode

/// Issue 23, item 7: a lost USB stick exposed the programme's data. Bundles were gzip plaintext
/// after a JSON header: anyone who found the stick could read every record. Now a bundle is sealed
/// to its recipients (HQ plus the nodes named) and signed by its sender; an altered bundle is
/// refused whole; an unsealed one is written only on request, and today's bundles stay readable.
@Suite struct SealedBundleTests {
    /// The X25519 key derived from a node's Ed25519 public key is the one its secret opens with.
    @Test func theSealKeyOfAPublicKeyIsTheKeyItsSecretOpens() throws {
        for _ in 0..<64 {
            let signing = Curve25519.Signing.PrivateKey()
            let converted = try #require(SealKey.publicKey(PublicKeyText(bytes: [UInt8](signing.publicKey.rawRepresentation))))
            let derived = SealKey.privateKey(seed: [UInt8](signing.rawRepresentation)).publicKey
            #expect(converted.rawRepresentation == derived.rawRepresentation)
        }
        // The field arithmetic on its own: inverses, and values that are not keys.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<32 {
            var x = FieldElement(littleEndian: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
            x.limbs.3 &= 0x3FFF_FFFF_FFFF_FFFF
            #expect(x * x.inverse == .one)
            #expect(x - x == .zero && (x + .one) - .one == x)
        }
        #expect(FieldElement.p - .one + .one == .zero)
        #expect(SealKey.publicKey(PublicKeyText(bytes: FieldElement.one.littleEndianBytes)) == nil, "y = 1 has no Montgomery point")
        #expect(SealKey.publicKey(PublicKeyText(bytes: FieldElement.p.littleEndianBytes)) == nil, "y = p is not canonical")
    }

    /// Lintan's bundle for HQ: its body is not gzip and does not hold the data; Gangu, not a
    /// recipient, is told so and nothing is written; HQ opens it; `--to gangu` lets Gangu open it.
    @Test func aLostStickShowsNothingAndOnlyItsRecipientsOpenIt() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (hq, lintan) = try Federation.hqAndLintan(in: dir)
        let gangu = dir.path("gangu").path
        try Federation.member(gangu, site: "gangu", label: "gangu-1", hq: hq)
        // HQ's bundle (for every node it approved) brings Lintan the registry, Gangu included.
        let fromHQ = dir.path("hq.bundle").path
        let hqExport = try await Binary.runAsync(["bundle", "export", "--data", hq, "--out", fromHQ, "--json"])
        #expect(hqExport.status == 0, "\(hqExport.stderr)")
        let hqSealed = try JSONSerialization.jsonObject(with: Data(hqExport.stdout.utf8)) as? [String: Any]
        #expect(Set(hqSealed?["sealedFor"] as? [String] ?? []) == ["lintan-1", "gangu-1"])
        #expect(try await Binary.runAsync(["bundle", "import", "--data", lintan, fromHQ]).status == 0)

        let marker = "lt-secret-临潭秘密"
        #expect(try await Binary.runAsync(["record", "put", "--data", lintan, "projects", "lt-secret", "name=\(marker)"]).status == 0)
        let sealed = dir.path("sealed.bundle").path
        let plain = dir.path("plain.bundle").path
        let export = try await Binary.runAsync(["bundle", "export", "--data", lintan, "--out", sealed])
        #expect(export.status == 0 && export.stderr.contains("sealed for dongli-hq"), "\(export.stderr)")
        #expect(try await Binary.runAsync(["bundle", "export", "--data", lintan, "--out", plain, "--unsealed"]).status == 0)
        // The check can fail: the unsealed body is gzip and inflates to the data.
        let plainBody = try Self.body(plain)
        #expect(plainBody.starts(with: [0x1F, 0x8B]))
        #expect(String(decoding: try Gzip.decompress(plainBody, maxSize: 1 << 24), as: UTF8.self).contains(marker))
        let sealedBody = try Self.body(sealed)
        #expect(!sealedBody.starts(with: [0x1F, 0x8B]))
        #expect(!String(decoding: try Data(contentsOf: URL(fileURLWithPath: sealed)), as: UTF8.self).contains(marker))
        #expect((try? Gzip.decompress(sealedBody, maxSize: 1 << 24)) == nil)

        let before = try await recordsAsync(gangu, "projects")
        let refused = try await Binary.runAsync(["bundle", "import", "--data", gangu, sealed])
        #expect(refused.status == 67, "\(refused.stderr)")
        #expect(refused.stderr.contains("sealed for dongli-hq") && refused.stderr.contains("gangu-1") && refused.stderr.contains("not among them"))
        #expect(try await recordsAsync(gangu, "projects").keys == before.keys)
        #expect(try await Binary.runAsync(["bundle", "import", "--data", hq, sealed]).status == 0)
        #expect(try await recordsAsync(hq, "projects")["lt-secret"]?["name"] as? String == marker)

        let forGangu = dir.path("for-gangu.bundle").path
        let named = try await Binary.runAsync(["bundle", "export", "--data", lintan, "--out", forGangu, "--to", "gangu", "--json"])
        #expect(named.status == 0, "\(named.stderr)")
        #expect(
            (try JSONSerialization.jsonObject(with: Data(named.stdout.utf8)) as? [String: Any])?["sealedFor"] as? [String] == [
                "dongli-hq", "gangu-1",
            ])
        #expect(try await Binary.runAsync(["bundle", "import", "--data", gangu, forGangu]).status == 0)
        #expect(try await recordsAsync(gangu, "projects")["lt-secret"]?["name"] as? String == marker)

        // Naming no known node, or asking for both sealing and not.
        let unknown = try await Binary.runAsync(["bundle", "export", "--data", lintan, "--out", dir.path("x").path, "--to", "chengde"])
        #expect(unknown.status == 3 && unknown.stderr.contains("no node named 'chengde'") && unknown.stderr.contains("gangu-1"), "\(unknown.stderr)")
        let both = try await Binary.runAsync(["bundle", "export", "--data", lintan, "--out", dir.path("x").path, "--to", "gangu", "--unsealed"])
        #expect(both.status == 64)
        #expect(!FileManager.default.fileExists(atPath: dir.path("x").path))
    }

    /// Every alteration (body, header, a cut end) and a bundle that names another sender than the
    /// one who signed it: refused whole with exit 65, nothing written. An unsealed bundle of today's
    /// format is still imported.
    @Test func anAlteredOrMisattributedBundleIsRefusedWhole() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (hq, lintan) = try Federation.hqAndLintan(in: dir)
        let gangu = dir.path("gangu").path
        try Federation.member(gangu, site: "gangu", label: "gangu-1", hq: hq)
        for i in 0..<30 {
            #expect(try await Binary.runAsync(["record", "put", "--data", lintan, "projects", "lt-\(i)", "name=项目\(i)"]).status == 0)
        }
        #expect(try await Binary.runAsync(["record", "put", "--data", gangu, "projects", "gg-1", "name=甘谷"]).status == 0)
        let file = dir.path("lintan.bundle").path
        #expect(try await Binary.runAsync(["bundle", "export", "--data", lintan, "--out", file]).status == 0)
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        let bodyStart = good.count - (try Self.body(file)).count
        let headerText = String(decoding: good[..<bodyStart], as: UTF8.self)

        let ganguFile = dir.path("gangu.bundle").path
        #expect(try await Binary.runAsync(["bundle", "export", "--data", gangu, "--out", ganguFile]).status == 0)
        let ganguBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: ganguFile)))
        let ganguID = Array((try Federation.identity(gangu)["node"] as? String ?? "").utf8)
        let lintanID = Array((try Federation.identity(lintan)["node"] as? String ?? "").utf8)

        var cases: [(String, [UInt8])] = []
        var body = good
        body[bodyStart + (good.count - bodyStart) / 2] ^= 0x01
        cases.append(("a bit of the body", body))
        let redated = Array(headerText.replacingOccurrences(of: "\"created\":1", with: "\"created\":2").utf8)
        #expect(redated.count == bodyStart && redated != Array(good[..<bodyStart]))
        cases.append(("the date in its header", redated + good[bodyStart...]))
        cases.append(("its last bytes cut off", Array(good.dropLast(40))))
        var claimed = ganguBytes
        var replaced = 0
        for start in 0...(claimed.count - ganguID.count) where Array(claimed[start..<(start + ganguID.count)]) == ganguID {
            claimed.replaceSubrange(start..<(start + ganguID.count), with: lintanID)
            replaced += 1
        }
        #expect(replaced >= 1, "the header names its sender")
        cases.append(("Gangu's bundle claiming to be Lintan's", claimed))

        let before = try await Binary.runAsync(["record", "list", "--data", hq, "projects", "--json"]).stdout
        for (what, bytes) in cases {
            let altered = dir.path("altered.bundle").path
            try Data(bytes).write(to: URL(fileURLWithPath: altered))
            let result = try await Binary.runAsync(["bundle", "import", "--data", hq, altered])
            #expect(result.status == 65, "\(what): \(result.stderr)")
            #expect(
                result.stderr.contains("signature does not verify") && result.stderr.contains("Nothing was imported"), "\(what): \(result.stderr)")
            #expect(try await Binary.runAsync(["record", "list", "--data", hq, "projects", "--json"]).stdout == before, "\(what) wrote something")
        }
        #expect(try await Binary.runAsync(["bundle", "import", "--data", hq, file]).status == 0)
        #expect(try await recordsAsync(hq, "projects").count == 30)

        // Today's (unsealed) format: still read.
        let old = dir.path("old.bundle").path
        #expect(try await Binary.runAsync(["bundle", "export", "--data", gangu, "--out", old, "--unsealed"]).status == 0)
        #expect(String(decoding: try Data(contentsOf: URL(fileURLWithPath: old)).prefix(18), as: UTF8.self) == "SYNCNODE-BUNDLE 1\n")
        #expect(try await Binary.runAsync(["bundle", "import", "--data", hq, old]).status == 0)
        #expect(try await recordsAsync(hq, "projects")["gg-1"] != nil)
    }

    /// The bytes after a bundle's three header lines.
    private static func body(_ path: String) throws -> [UInt8] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var newlines = 0
        for (i, byte) in bytes.enumerated() where byte == 0x0A {
            newlines += 1
            if newlines == 3 { return Array(bytes[(i + 1)...]) }
        }
        throw TestFailure("\(path) has no body")
    }
}
