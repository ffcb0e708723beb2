import Foundation
import SyncNode
import SyncProtocol

/// Bytes on the wire per field change, as a pull response carries them (gzip).
enum WireSize {
    static func run(records: Int, deltaUpdates: Int) throws -> [Figure] {
        let scratch = try Scratch("wire")
        defer { scratch.remove() }
        let store = try Store.create(in: scratch.path("a"), site: "lintan", label: nil)
        defer { try? store.close() }
        try Workload.insertRecords(store, count: records, perTransaction: 100)
        let full = try pulledBytes(store, since: VersionVector())
        let fieldsFull = records * Workload.fieldsPerRecord
        let after = try store.vector()
        try Workload.updateOneField(store, count: deltaUpdates, of: records, perTransaction: 100)
        let delta = try pulledBytes(store, since: after)
        return [
            Figure(
                id: "P3", name: "wire bytes per field change, full set (\(records) records x 6 fields, gzip)",
                value: Double(full) / Double(fieldsFull),
                unit: "B", goal: "—"),
            Figure(
                id: "P3", name: "wire bytes per field change, delta (\(deltaUpdates) one-field updates, gzip)",
                value: Double(delta) / Double(deltaUpdates),
                unit: "B", goal: "≤ 30 B (peers: 34 B extension, 12–31 B library)", met: Double(delta) / Double(deltaUpdates) <= 30),
        ]
    }

    /// Size of the gzip-compressed pull responses that carry everything `since` lacks.
    static func pulledBytes(_ store: Store, since: VersionVector, stripSignatures: Bool = false) throws -> Int {
        var vector = since
        var total = 0
        let me = PeerIdentity(node: NodeID(high: 1, low: 1), site: "x", label: "x")
        let service = SyncService(store: store)
        while true {
            let request = PullRequest(from: me, vector: vector, maxTransactions: 500, maxBytes: 2 << 20)
            var body = try service.pull(body: try WireCodec.encodeMessage(request))
            let (header, frames) = try BatchCodec.decode(body)
            if stripSignatures {
                // The same batch as it would be with no signatures in the frames.
                let bare = try frames.map { frame -> [UInt8] in
                    let item = try ReceivedTransaction(frame: frame)
                    return item.refusal == nil ? [UInt8(ascii: "T")] + item.body : Array(frame)
                }
                body = BatchCodec.encode(header: Array(header), frames: bare)
            }
            total += Gzip.compress(body).count
            let parsed = try WireCodec.decodeMessage(BatchHeader.self, from: header)
            for frame in frames {
                let t = try ReceivedTransaction(frame: frame).transaction
                vector[t.origin] = max(vector[t.origin], t.seq)
            }
            if !parsed.more { return total }
        }
    }
}
