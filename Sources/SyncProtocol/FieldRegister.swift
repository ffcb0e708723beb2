/// One version of a field as stored: the write's timestamp and what it replaced.
public struct FieldVersion: Hashable, Sendable {
    public var ts: Timestamp
    public var base: Timestamp?
    public var resolves: [Timestamp]
    public var value: Value

    public init(ts: Timestamp, base: Timestamp?, resolves: [Timestamp] = [], value: Value) {
        self.ts = ts
        self.base = base
        self.resolves = resolves
        self.value = value
    }

    /// Timestamps this version replaced knowingly.
    public var replaces: [Timestamp] { (base.map { [$0] } ?? []) + resolves }
}

/// The merge rule of one last-writer-wins field, as a pure value.
///
/// The state is the set of every version ever written, so merging is set union: commutative,
/// associative and idempotent. From that set:
/// - the **winner** is the version with the greatest timestamp (never the value or an edit count);
/// - a **head** is a version no other version replaced (as its `base` or in `resolves`);
/// - the **conflicts** are the heads other than the winner whose value differs from the winner's:
///   writes made without knowing of each other that disagree. They stay listed until a write
///   resolves them. (Concurrent writes of the same value need no review.)
/// Because all three are functions of the set, every replica holding the same versions reports the
/// same winner and the same conflicts, whatever order the versions arrived in.
public struct FieldRegister: Hashable, Sendable {
    public private(set) var versions: [Timestamp: FieldVersion] = [:]

    public init(_ versions: [FieldVersion] = []) {
        for v in versions { insert(v) }
    }

    /// Adds a version; returns false when it was already present (re-delivery is a no-op).
    @discardableResult
    public mutating func insert(_ version: FieldVersion) -> Bool {
        guard versions[version.ts] == nil else { return false }
        versions[version.ts] = version
        return true
    }

    public func merged(with other: FieldRegister) -> FieldRegister {
        var out = self
        for v in other.versions.values { out.insert(v) }
        return out
    }

    public var winner: FieldVersion? { versions.values.max { $0.ts < $1.ts } }

    public var heads: [FieldVersion] {
        let replaced = Set(versions.values.flatMap(\.replaces))
        return versions.values.filter { !replaced.contains($0.ts) }.sorted { $0.ts < $1.ts }
    }

    public var conflicts: [FieldVersion] {
        guard let winner else { return [] }
        return heads.filter { $0.ts != winner.ts && $0.value != winner.value }
    }
}

/// How the fields of one record combine into what a reader sees.
public enum RecordRule {
    /// A record is deleted when its `_deleted` field's winning value is truthy and that write is
    /// newer than the winning write of every other field. So a later edit (even one made without
    /// knowing of the delete) brings the record back, and an older concurrent edit does not.
    public static func isDeleted(winners: [String: FieldVersion]) -> Bool {
        isDeleted(deletion: winners[Names.deletedField], otherWinners: winners.lazy.filter { $0.key != Names.deletedField }.map(\.value.ts))
    }

    /// The same rule, for a reader that keys fields otherwise: the winning `_deleted` version and
    /// the winning timestamps of every other field.
    public static func isDeleted(deletion: FieldVersion?, otherWinners: some Sequence<Timestamp>) -> Bool {
        guard let deletion, deletion.value.isTruthy else { return false }
        return otherWinners.allSatisfy { $0 < deletion.ts }
    }
}
