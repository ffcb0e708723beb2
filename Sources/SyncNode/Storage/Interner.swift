import Foundation
import GRDB
import SyncProtocol
import Synchronization

/// A timestamp's clock part as one integer: milliseconds << 16 | counter (time order).
extension Timestamp {
    var clock: UInt64 { millis << 16 | UInt64(counter) }

    init(clock: UInt64, node: NodeID) {
        self.init(millis: clock >> 16, counter: UInt16(truncatingIfNeeded: clock), node: node)
    }
}

/// Interned names (collections, fields) and node ids that every process of this node has committed.
/// Entries are never removed nor renumbered, so a committed entry stays valid for good.
final class InternCache: Sendable {
    private struct Tables {
        var nameIx: [ExactText: Int64] = [:]
        var names: [Int64: String] = [:]
        var nodeIx: [NodeID: Int64] = [:]
        var nodes: [Int64: NodeID] = [:]
    }
    private let tables = Mutex(Tables())

    func nameIx(_ name: String) -> Int64? { tables.withLock { $0.nameIx[ExactText(name)] } }
    func name(_ ix: Int64) -> String? { tables.withLock { $0.names[ix] } }
    func nodeIx(_ node: NodeID) -> Int64? { tables.withLock { $0.nodeIx[node] } }
    func node(_ ix: Int64) -> NodeID? { tables.withLock { $0.nodes[ix] } }

    func add(names: [ExactText: Int64], nodes: [NodeID: Int64]) {
        guard !names.isEmpty || !nodes.isEmpty else { return }
        tables.withLock { t in
            for (name, ix) in names {
                t.nameIx[name] = ix
                t.names[ix] = name.text
            }
            for (node, ix) in nodes {
                t.nodeIx[node] = ix
                t.nodes[ix] = node
            }
        }
    }
}

/// Interning within one database transaction. What it learns reaches the shared cache only through
/// `publish()`, which a writer calls after its transaction committed (a rolled-back number must not
/// be remembered: another process could give it to another name).
struct Interner {
    let shared: InternCache?
    private var names: [ExactText: Int64] = [:]
    private var nameTexts: [Int64: String] = [:]
    private var nodes: [NodeID: Int64] = [:]
    private var nodeIDs: [Int64: NodeID] = [:]

    /// Record states read during a local commit, kept until the commit's own write of that record
    /// takes them (so a record is read once, not twice). Only a local commit turns this on.
    var memo: [RecordKey: Data?]?

    /// The history chain (`HistoryChain`) of the last log row this transaction appended, per
    /// origin: the next row of that origin links to it without reading it back.
    var lastChain: [Int64: (seq: UInt64, chain: Data)] = [:]

    /// Raw statements of the current write closure (nil outside one, and for readers). Set with
    /// `defer { interner.hot = nil }` inside the closure: the connection is only ours inside it.
    var hot: HotStatements?

    /// The write's raw statements; every path that applies transactions sets them.
    func statements() throws(SyncNodeError) -> HotStatements {
        guard let hot else { throw SyncNodeError(.storage, "internal error: a write ran without its prepared statements") }
        return hot
    }

    struct RecordKey: Hashable {
        var collection: Int64
        var recordID: ExactText
    }

    init(_ shared: InternCache?) {
        self.shared = shared
    }

    /// The names looked up last (a write repeats one collection and a few fields): checked
    /// before any hashing.
    private var recent: [(name: String, ix: Int64)] = []

    /// The number of `name`, assigning one if `create` (in a write transaction).
    mutating func nameIx(_ name: String, _ db: Database, create: Bool = true) throws -> Int64? {
        if let hit = recent.first(where: { $0.name.sameBytes(as: name) }) { return hit.ix }
        if let ix = names[ExactText(name)] ?? shared?.nameIx(name) {
            remember(name, ix)
            return ix
        }
        var ix = try Int64.fetchOne(db.cachedStatement(sql: "SELECT ix FROM name WHERE text = ?"), arguments: [name])
        if ix == nil && create {
            try db.cachedStatement(sql: "INSERT INTO name (text) VALUES (?)").execute(arguments: [name])
            ix = db.lastInsertedRowID
        }
        if let ix {
            names[ExactText(name)] = ix
            nameTexts[ix] = name
            remember(name, ix)
        }
        return ix
    }

    private mutating func remember(_ name: String, _ ix: Int64) {
        if recent.count >= 16 { recent.removeFirst() }
        recent.append((name, ix))
    }

    mutating func name(_ ix: Int64, _ db: Database) throws -> String {
        if let text = nameTexts[ix] ?? shared?.name(ix) { return text }
        guard let text = try String.fetchOne(db.cachedStatement(sql: "SELECT text FROM name WHERE ix = ?"), arguments: [ix]) else {
            throw SyncNodeError(
                .databaseCorrupt,
                "the database is damaged: it refers to name #\(ix), which it does not hold; restore the node from a backup or re-sync it")
        }
        names[ExactText(text)] = ix
        nameTexts[ix] = text
        return text
    }

    mutating func nodeIx(_ node: NodeID, _ db: Database, create: Bool = true) throws -> Int64? {
        if let ix = nodes[node] ?? shared?.nodeIx(node) { return ix }
        var ix = try Int64.fetchOne(db.cachedStatement(sql: "SELECT ix FROM node WHERE id = ?"), arguments: [Data(node.bytes)])
        if ix == nil && create {
            try db.cachedStatement(sql: "INSERT INTO node (id) VALUES (?)").execute(arguments: [Data(node.bytes)])
            ix = db.lastInsertedRowID
        }
        if let ix {
            nodes[node] = ix
            nodeIDs[ix] = node
        }
        return ix
    }

    mutating func node(_ ix: Int64, _ db: Database) throws -> NodeID {
        if let id = nodeIDs[ix] ?? shared?.node(ix) { return id }
        guard let data = try Data.fetchOne(db.cachedStatement(sql: "SELECT id FROM node WHERE ix = ?"), arguments: [ix]),
            let id = NodeID(bytes: data)
        else {
            throw SyncNodeError(
                .databaseCorrupt,
                "the database is damaged: it refers to node #\(ix), which it does not hold; restore the node from a backup or re-sync it")
        }
        nodes[id] = ix
        nodeIDs[ix] = id
        return id
    }

    /// Hands what this transaction learnt to the shared cache; call only once it committed.
    func publish() {
        shared?.add(names: names, nodes: nodes)
    }
}
