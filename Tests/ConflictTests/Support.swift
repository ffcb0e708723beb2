import Foundation
import SyncNode
import SyncProtocol

/// Draws for the scripts; the generator (SyncProtocol's SplitMix64) makes one seed reproduce a run.
extension SplitMix64 {
    /// A uniformly drawn integer in `range`.
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }

    /// True with probability `percent`/100.
    mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }

    mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }
}

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct TempDir: Sendable {
    let url: URL

    init(_ tag: String = "conflict") {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("syncnode-\(tag)-\(UUID().uuidString)", isDirectory: true)
    }

    func sub(_ name: String) -> URL { url.appendingPathComponent(name, isDirectory: true) }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// One replica under test: a real store in its own directory with its own settable clock.
struct Replica {
    let store: Store
    let clock: ManualClock
    let name: String

    static func make(in dir: TempDir, _ name: String, millis: UInt64) throws -> Replica {
        let clock = ManualClock(millis: millis)
        let store = try Store.create(in: dir.sub(name), site: "site", label: name, clock: clock)
        return Replica(store: store, clock: clock, name: name)
    }
}

/// Sends `to` what `from` holds and it lacks; with a limit, only a prefix of that list.
@discardableResult
func exchange(from: Store, to: Store, limit: Int? = nil) throws -> ApplyReport {
    var missing = try from.transactions(missingFrom: to.vector()).transactions
    if let limit { missing = Array(missing.prefix(limit)) }
    return try to.apply(missing)
}

/// Exchanges everything between every ordered pair, twice: afterwards every replica holds everything.
func fullExchange(_ stores: [Store]) throws {
    for _ in 0..<2 {
        for a in stores.indices {
            for b in stores.indices where a != b {
                try exchange(from: stores[a], to: stores[b])
            }
        }
    }
}

/// Fixed node ids for golden vectors: `node(1) < node(2) < ...`.
func node(_ n: UInt64) -> NodeID { NodeID(high: 0x1000_0000_0000_0000 &* n, low: n) }

func ts(_ millis: UInt64, _ counter: UInt16 = 0, _ n: UInt64 = 1) -> Timestamp {
    Timestamp(millis: millis, counter: counter, node: node(n))
}

/// A conflict as the tests compare it (`ConflictItem` has no public initialiser).
struct Conflict: Hashable, CustomStringConvertible {
    var collection: String
    var recordID: String
    var field: String
    var winnerValue: Value
    var winnerTs: Timestamp
    var otherValue: Value
    var otherTs: Timestamp

    init(
        collection: String, recordID: String, field: String, winnerValue: Value, winnerTs: Timestamp, otherValue: Value, otherTs: Timestamp
    ) {
        self.collection = collection
        self.recordID = recordID
        self.field = field
        self.winnerValue = winnerValue
        self.winnerTs = winnerTs
        self.otherValue = otherValue
        self.otherTs = otherTs
    }

    init(_ item: ConflictItem) {
        self.init(
            collection: item.collection, recordID: item.recordID, field: item.field, winnerValue: item.winnerValue, winnerTs: item.winnerTs,
            otherValue: item.otherValue, otherTs: item.otherTs)
    }

    var description: String {
        "\(collection)/\(recordID).\(field): \(winnerValue)@\(winnerTs.millis).\(winnerTs.counter) over \(otherValue)@\(otherTs.millis).\(otherTs.counter)"
    }
}

extension Store {
    /// `conflicts()` in the tests' comparable form, in the store's order.
    func conflictList() throws -> [Conflict] { try conflicts().map(Conflict.init) }
}
