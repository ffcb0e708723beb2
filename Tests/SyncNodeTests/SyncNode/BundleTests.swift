import Foundation
import SyncNode
import SyncProtocol
import Testing

@Suite struct BundleTests {
    private func twoNodesWithWork() throws -> (TestNode, TestNode, URL) {
        let a = try TestNode()
        let b = try TestNode(site: "hq")
        for i in 0..<20 {
            try a.store.commit([.put(collection: "projects", recordID: "p\(i)", fields: [.init("name", .text("项目 \(i)"))])])
        }
        try a.store.commit([.append(ledger: "funds", entryID: nil, fields: [.init("amount", .int(10_000_000))])])
        let file = a.directory.path("out.bundle")
        let report = try a.store.exportBundle(to: file, since: try b.store.vector(), sealedFor: nil)
        #expect(report.transactions == 21)
        return (a, b, file)
    }

    @Test func bundleCarriesEverythingAndImportTwiceIsANoOp() throws {
        let (a, b, file) = try twoNodesWithWork()
        defer {
            a.remove()
            b.remove()
        }
        let first = try b.store.importBundle(from: file)
        #expect(first.apply?.applied == 21)
        #expect(try b.store.stateDigest() == a.store.stateDigest())
        let again = try b.store.importBundle(from: file)
        #expect(again.apply?.applied == 0)
        #expect(again.apply?.duplicates == 21)
        #expect(try b.store.stateDigest() == a.store.stateDigest())
        // What a bundle's header says of its sender is not believed: labels come from the registry.
        #expect(try b.store.nodeLabels()[a.store.info.nodeID] == nil)
    }

    @Test func exportSinceAVectorCarriesOnlyWhatIsMissing() throws {
        let (a, b, file) = try twoNodesWithWork()
        defer {
            a.remove()
            b.remove()
        }
        _ = try b.store.importBundle(from: file)
        try a.store.commit([.put(collection: "projects", recordID: "new", fields: [.init("name", .text("later"))])])
        let report = try a.store.exportBundle(to: file, since: try b.store.vector(), sealedFor: nil)
        #expect(report.transactions == 1)
    }

    @Test(arguments: ["flip", "truncate", "header", "magic", "version", "empty"])
    func damagedBundleIsRefusedWholeAndNothingIsApplied(damage: String) throws {
        let (a, b, file) = try twoNodesWithWork()
        defer {
            a.remove()
            b.remove()
        }
        var bytes = [UInt8](try Data(contentsOf: file))
        switch damage {
        case "flip": bytes[bytes.count - 40] ^= 0x01
        case "truncate": bytes.removeLast(bytes.count / 3)
        case "header":
            let i = bytes.firstIndex(of: UInt8(ascii: "{"))!
            bytes[i + 3] ^= 0x20
        case "magic": bytes.replaceSubrange(0..<7, with: Array("GARBAGE".utf8))
        case "version":
            let i = bytes.firstIndex(of: UInt8(ascii: " "))!
            bytes[i + 1] = UInt8(ascii: "9")
        default: bytes = []
        }
        try Data(bytes).write(to: file)
        let before = try b.store.storedDigest()
        do {
            _ = try b.store.importBundle(from: file)
            Issue.record("a damaged bundle (\(damage)) was imported")
        } catch {
            #expect(error.code == .corruptBundle)
            #expect(error.exitCode == 65)
            #expect(error.message.contains("Nothing was imported"))
        }
        #expect(try b.store.storedDigest() == before)
    }

    /// A bundle written by a version 1 node (protocol 1 in its header, JSON transaction bodies)
    /// still imports, and the bodies are kept as they came.
    @Test func aVersionOneBundleWithJSONBodiesImports() throws {
        let (a, b, _) = try twoNodesWithWork()
        defer {
            a.remove()
            b.remove()
        }
        let made = try a.store.transactions(missingFrom: VersionVector()).transactions
        let asJSON = made.map { ReceivedTransaction(transaction: $0.transaction, body: WireCodec.encodeJSON($0.transaction)) }
        #expect(asJSON.allSatisfy { $0.body.first == UInt8(ascii: "{") })
        let header = BundleFile.Header(
            format: 1, protocolVersion: 1, from: a.store.info.nodeID, site: "lintan", label: "lintan-old", created: 0, since: VersionVector(),
            vector: try a.store.vector(), transactions: asJSON.count)
        let file = b.directory.path("v1.bundle")
        try Data(try BundleFile(header: header, transactions: asJSON).encoded()).write(to: file)
        let report = try b.store.importBundle(from: file)
        #expect(report.apply?.applied == made.count)
        // The same records and ledgers; the logs' chains differ, as they should: the version 1
        // bundle carried the transactions without their signatures.
        func stateOnly(_ digest: String) -> [Substring] { digest.split(separator: "\n").filter { !$0.hasPrefix("c ") } }
        #expect(stateOnly(try b.store.stateDigest()) == stateOnly(try a.store.stateDigest()))
        #expect(try b.store.transactions(missingFrom: VersionVector()).transactions.map(\.body) == asJSON.map(\.body))
    }

    @Test func bundleWithAValidChecksumButAMalformedTransactionIsRefused() throws {
        let node = try TestNode()
        defer { node.remove() }
        let origin = NodeID(high: 1, low: 2)
        let header = BundleFile.Header(
            format: 1, protocolVersion: 1, from: origin, site: "x", label: "x", created: 0, since: VersionVector(), vector: VersionVector(),
            transactions: 1)
        let bad = ReceivedTransaction(
            transaction: Transaction(origin: origin, seq: 1, hlc: Timestamp(millis: 1, counter: 0, node: origin), changes: []),
            body: Array(#"{"o":"0000000000000001000000000000000Z","s":1}"#.utf8))
        let file = node.directory.path("bad.bundle")
        try Data(try BundleFile(header: header, transactions: [bad]).encoded()).write(to: file)
        do {
            _ = try node.store.importBundle(from: file)
            Issue.record("a malformed transaction was imported")
        } catch {
            #expect(error.code == .corruptBundle)
        }
        #expect(try node.store.vector().entries.isEmpty)
    }
}
