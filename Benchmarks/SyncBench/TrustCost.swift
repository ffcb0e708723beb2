import Crypto
import Foundation
import SyncNode
import SyncProtocol

/// What trust costs: Ed25519 signing and verification per transaction, the apply rate with and
/// without verification, and the signature's share of the bytes on the wire.
enum TrustCost {
    static func run(transactions: Int) throws -> [Figure] {
        let scratch = try Scratch("trust")
        defer { scratch.remove() }
        // Typical transaction bodies: one record of the benchmark shape each.
        let source = try Store.create(in: scratch.path("source"), site: "hq", label: nil, role: .hq, trust: .hq)
        defer { try? source.close() }
        for i in 0..<transactions {
            try source.commit([.put(collection: "projects", recordID: "p\(i)", fields: Workload.fields(i))])
        }
        let batch = try source.transactions(missingFrom: VersionVector()).transactions.filter { !$0.transaction.touchesTrustData }
        let key = Curve25519.Signing.PrivateKey()
        let payloads = batch.map { Array("syncnode-tx-v1\n".utf8) + $0.body }
        var signatures: [Data] = []
        let signSeconds = try Clock.seconds { signatures = try payloads.map { try key.signature(for: $0) } }
        let publicKey = key.publicKey
        var valid = 0
        let verifySeconds = Clock.seconds {
            valid = zip(signatures, payloads).filter { publicKey.isValidSignature($0.0, for: $0.1) }.count
        }
        guard valid == payloads.count else { throw BenchError("a signature did not verify") }

        // The same transactions applied by a verifying node and by an open one.
        let verifying = try Store.create(
            in: scratch.path("verifying"), site: "lintan", label: nil, role: .county, trust: .anchor(source.info.publicKey))
        let open = try Store.create(in: scratch.path("open"), site: "lintan", label: nil)
        defer {
            try? verifying.close()
            try? open.close()
        }
        let all = try source.transactions(missingFrom: VersionVector()).transactions
        let verifiedSeconds = try Clock.seconds { _ = try verifying.apply(all) }
        let openSeconds = try Clock.seconds { _ = try open.apply(all) }
        guard try verifying.stateDigest() == open.stateDigest() else { throw BenchError("verifying and open nodes differ") }

        let withSignatures = try WireSize.pulledBytes(source, since: VersionVector())
        let withoutSignatures = try WireSize.pulledBytes(source, since: VersionVector(), stripSignatures: true)
        let fieldChanges = transactions * Workload.fieldsPerRecord
        return [
            Figure(
                id: "T1", name: "Ed25519 signing per transaction (\(payloads.count) one-record transactions)",
                value: signSeconds / Double(payloads.count) * 1e6, unit: "µs", goal: "—"),
            Figure(
                id: "T1", name: "Ed25519 verification per transaction", value: verifySeconds / Double(payloads.count) * 1e6, unit: "µs", goal: "—"),
            Figure(
                id: "T1", name: "remote apply of \(all.count) transactions with verification (vs an open node)", value: verifiedSeconds, unit: "s",
                baseline: openSeconds, baselineName: "no verification", goal: "—"),
            Figure(
                id: "T2", name: "wire bytes per field change with signatures, one record per transaction (gzip)",
                value: Double(withSignatures) / Double(fieldChanges), unit: "B", baseline: Double(withoutSignatures) / Double(fieldChanges),
                baselineName: "signatures left out", goal: "—"),
        ]
    }
}
