/// What a node holds: for each origin, the highest transaction seq held. Seqs are gap-free, so
/// holding seq n means holding 1...n.
public struct VersionVector: Hashable, Sendable {
    public private(set) var entries: [NodeID: UInt64]

    public init(_ entries: [NodeID: UInt64] = [:]) {
        self.entries = entries.filter { $0.value > 0 }
    }

    public subscript(origin: NodeID) -> UInt64 {
        get { entries[origin] ?? 0 }
        set { entries[origin] = newValue > 0 ? newValue : nil }
    }

    public func contains(origin: NodeID, seq: UInt64) -> Bool { seq <= self[origin] }

    /// Pointwise maximum.
    public func merged(with other: VersionVector) -> VersionVector {
        var out = self
        for (origin, seq) in other.entries where seq > out[origin] { out[origin] = seq }
        return out
    }

    /// Transactions this vector holds and `other` lacks, per origin: `(origin, after, upTo)`.
    public func surplus(over other: VersionVector) -> [(origin: NodeID, after: UInt64, upTo: UInt64)] {
        entries.keys.sorted().compactMap { origin in
            let mine = self[origin]
            let theirs = other[origin]
            return mine > theirs ? (origin, theirs, mine) : nil
        }
    }

    /// How many transactions this vector holds that `other` lacks.
    public func count(beyond other: VersionVector) -> UInt64 {
        entries.reduce(0) { sum, entry in sum + (entry.value > other[entry.key] ? entry.value - other[entry.key] : 0) }
    }

    /// Total number of transactions held.
    public var total: UInt64 { entries.values.reduce(0, +) }
}

/// Wire form: `{"<node hex>": seq, ...}`.
extension VersionVector: Codable {
    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode([String: UInt64].self)
        var entries: [NodeID: UInt64] = [:]
        for (key, seq) in raw {
            guard let id = NodeID(hex: key) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: decoder.codingPath, debugDescription: "version vector key '\(key.prefix(40))' is not a node id"))
            }
            entries[id] = seq
        }
        self.init(entries)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Dictionary(uniqueKeysWithValues: entries.map { ($0.key.hex, $0.value) }))
    }
}
