import Foundation
import SyncNode
import SyncProtocol

/// The benchmark record shape: a text id, 3 short texts, 2 integers and 1 real.
enum Workload {
    static let fieldsPerRecord = 6

    static func fields(_ i: Int) -> [FieldAssignment] {
        [
            .init("name", .text("项目-\(i)")), .init("county", .text(["chengde", "lintan", "gangu"][i % 3])),
            .init("stage", .text(["approved", "started", "completed"][i % 3])), .init("funds_fen", .int(Int64(i) * 1000)),
            .init("people", .int(Int64(i % 500))), .init("progress", .real(Double(i % 100) / 100)),
        ]
    }

    /// `count` records through the node's write path, `perTransaction` records per transaction.
    static func insertRecords(_ store: Store, count: Int, perTransaction: Int) throws {
        var i = 0
        while i < count {
            let n = min(perTransaction, count - i)
            try store.commit((i..<(i + n)).map { .put(collection: "projects", recordID: "p\($0)", fields: fields($0)) })
            i += n
        }
    }

    /// `count` one-field updates spread over the records.
    static func updateOneField(_ store: Store, count: Int, of records: Int, perTransaction: Int) throws {
        var i = 0
        while i < count {
            let n = min(perTransaction, count - i)
            try store.commit(
                (i..<(i + n)).map { .put(collection: "projects", recordID: "p\(($0 * 7919) % records)", fields: [.init("people", .int(Int64($0)))]) })
            i += n
        }
    }
}
