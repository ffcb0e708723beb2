import PropertyBased
import SyncProtocol
import Testing

/// A random history of one field: versions with distinct timestamps (few millis, counters and nodes,
/// so ties on millis and counter are common), each replacing an earlier version or nothing, some
/// resolving further earlier versions, some based on a version that is not in the pool (written
/// elsewhere and never delivered), plus three overlapping subsets and one shuffled order of the pool.
struct FieldHistory: Sendable, CustomStringConvertible {
    var pool: [FieldVersion]
    var a: [FieldVersion]
    var b: [FieldVersion]
    var c: [FieldVersion]
    var shuffled: [FieldVersion]

    var description: String {
        pool.map { v in
            "\(v.ts.millis).\(v.ts.counter)@\(v.ts.node.low) base=\(v.base.map { "\($0.millis).\($0.counter)@\($0.node.low)" } ?? "-") x=\(v.resolves.count) \(v.value)"
        }.joined(separator: "; ")
    }

    static func generate(_ rng: inout some RandomNumberGenerator) -> FieldHistory {
        let count = Int.random(in: 1...12, using: &rng)
        var stamps = Set<Timestamp>()
        for _ in 0..<count {
            let wide = Bool.random(using: &rng) && Bool.random(using: &rng)
            let millis = wide ? UInt64.random(in: 0...Timestamp.maxMillis, using: &rng) : UInt64.random(in: 100...104, using: &rng)
            let counter = wide ? UInt16.random(in: 0...UInt16.max, using: &rng) : UInt16.random(in: 0...2, using: &rng)
            stamps.insert(Timestamp(millis: millis, counter: counter, node: node(UInt64.random(in: 1...3, using: &rng))))
        }
        let ordered = stamps.sorted()
        var pool: [FieldVersion] = []
        for (i, ts) in ordered.enumerated() {
            var base: Timestamp?
            var resolves: [Timestamp] = []
            let roll = Int.random(in: 0..<10, using: &rng)
            if i > 0, roll < 7 {
                base = ordered[Int.random(in: 0..<i, using: &rng)]
            } else if roll == 7, ts.millis > 0 {
                // A base this register never receives (the version was not delivered here).
                base = Timestamp(millis: ts.millis - 1, counter: 0, node: node(9))
            }
            if i > 1, Int.random(in: 0..<4, using: &rng) == 0 {
                let extra = Set((0..<Int.random(in: 1...2, using: &rng)).map { _ in ordered[Int.random(in: 0..<i, using: &rng)] })
                resolves = extra.subtracting(base.map { [$0] } ?? []).sorted()
            }
            let value: Value =
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: .int(Int64.random(in: -2...2, using: &rng))
                case 1: .text(["x", "y", ""].randomElement(using: &rng)!)
                case 2: .real(0.5)
                default: .null
                }
            pool.append(FieldVersion(ts: ts, base: base, resolves: resolves, value: value))
        }
        func subset(_ rng: inout some RandomNumberGenerator) -> [FieldVersion] { pool.filter { _ in Bool.random(using: &rng) } }
        let a = subset(&rng)
        let b = subset(&rng)
        let c = subset(&rng)
        return FieldHistory(pool: pool, a: a, b: b, c: c, shuffled: pool.shuffled(using: &rng))
    }
}

let fieldHistories = Generator<FieldHistory, Shrink.None<FieldHistory>>(run: { rng in FieldHistory.generate(&rng) })

/// Random ledger writes: few entry ids so that the same id is used by concurrent writers.
struct LedgerWrites: Sendable, CustomStringConvertible {
    var writes: [(LedgerEntry, Timestamp)]
    var shuffled: [(LedgerEntry, Timestamp)]
    var split: Int

    var description: String { writes.map { "\($0.0.entryID)@\($0.1.millis).\($0.1.counter)/\($0.1.node.low)" }.joined(separator: " ") }

    static func generate(_ rng: inout some RandomNumberGenerator) -> LedgerWrites {
        var seen = Set<Timestamp>()
        var writes: [(LedgerEntry, Timestamp)] = []
        for _ in 0..<Int.random(in: 1...10, using: &rng) {
            let t = Timestamp(
                millis: UInt64.random(in: 1...3, using: &rng), counter: UInt16.random(in: 0...1, using: &rng),
                node: node(UInt64.random(in: 1...3, using: &rng)))
            guard seen.insert(t).inserted else { continue }
            let entry = LedgerEntry(
                ledger: Bool.random(using: &rng) ? "cash" : "stock", entryID: "e\(Int.random(in: 0...2, using: &rng))",
                fields: ["amount": .int(Int64.random(in: -5...5, using: &rng))])
            writes.append((entry, t))
        }
        return LedgerWrites(writes: writes, shuffled: writes.shuffled(using: &rng), split: Int.random(in: 0...writes.count, using: &rng))
    }
}

let ledgerWrites = Generator<LedgerWrites, Shrink.None<LedgerWrites>>(run: { rng in LedgerWrites.generate(&rng) })

@Suite("Merge laws of the pure rules")
struct MergeLawTests {
    @Test func registerMergeIsCommutative() async {
        await propertyCheck(count: 300, input: fieldHistories) { h in
            let a = FieldRegister(h.a)
            let b = FieldRegister(h.b)
            #expect(a.merged(with: b) == b.merged(with: a), "\(h)")
        }
    }

    @Test func registerMergeIsAssociative() async {
        await propertyCheck(count: 300, input: fieldHistories) { h in
            let a = FieldRegister(h.a)
            let b = FieldRegister(h.b)
            let c = FieldRegister(h.c)
            #expect(a.merged(with: b).merged(with: c) == a.merged(with: b.merged(with: c)), "\(h)")
        }
    }

    @Test func registerMergeIsIdempotent() async {
        await propertyCheck(count: 300, input: fieldHistories) { h in
            let a = FieldRegister(h.a)
            let ab = a.merged(with: FieldRegister(h.b))
            #expect(a.merged(with: a) == a, "\(h)")
            #expect(ab.merged(with: a) == ab, "\(h)")
            #expect(ab.merged(with: ab) == ab, "\(h)")
        }
    }

    @Test func redeliveredVersionIsANoOp() async {
        await propertyCheck(count: 200, input: fieldHistories) { h in
            var r = FieldRegister(h.pool)
            let before = r
            for v in h.shuffled {
                let inserted = r.insert(v)
                #expect(!inserted, "\(h)")
            }
            #expect(r == before, "\(h)")
        }
    }

    @Test func insertionOrderDoesNotChangeWinnerHeadsOrConflicts() async {
        await propertyCheck(count: 400, input: fieldHistories) { h in
            let inOrder = FieldRegister(h.pool)
            let permuted = FieldRegister(h.shuffled)
            var oneByOne = FieldRegister()
            for v in h.shuffled.reversed() { oneByOne.insert(v) }
            for r in [permuted, oneByOne] {
                #expect(r.winner == inOrder.winner, "\(h)")
                #expect(r.heads == inOrder.heads, "\(h)")
                #expect(r.conflicts == inOrder.conflicts, "\(h)")
            }
        }
    }

    @Test func winnerHeadsAndConflictsFollowTheirDefinitions() async {
        await propertyCheck(count: 400, input: fieldHistories) { h in
            for versions in [h.pool, h.a, h.b] {
                let r = FieldRegister(versions)
                let ref = FieldReference(versions: versions)
                #expect(r.winner == ref.winner, "\(h)")
                #expect(r.heads == ref.heads, "\(h)")
                #expect(r.conflicts == ref.conflicts, "\(h)")
                if let w = r.winner {
                    // Every write replaces only older versions, so the newest one is never replaced.
                    #expect(r.heads.contains(w), "\(h)")
                    #expect(!r.conflicts.contains(w), "\(h)")
                }
            }
        }
    }

    @Test func mergedRegisterAnswersLikeTheUnionOfVersions() async {
        await propertyCheck(count: 300, input: fieldHistories) { h in
            let merged = FieldRegister(h.a).merged(with: FieldRegister(h.b))
            let union = FieldReference(versions: Array(Set(h.a).union(h.b)))
            #expect(merged.winner == union.winner, "\(h)")
            #expect(merged.heads == union.heads, "\(h)")
            #expect(merged.conflicts == union.conflicts, "\(h)")
        }
    }

    @Test func ledgerUnionIsOrderIndependent() async {
        await propertyCheck(count: 300, input: ledgerWrites) { w in
            var inOrder = LedgerModel()
            for (e, t) in w.writes { inOrder.add(e, ts: t) }
            var permuted = LedgerModel()
            for (e, t) in w.shuffled { permuted.add(e, ts: t) }
            #expect(inOrder == permuted, "\(w)")
            // The kept entry under each id of each origin is that origin's earliest write of the id.
            for (key, kept) in inOrder.kept {
                let earliest = w.writes.filter { $0.0.ledger == key.ledger && $0.0.entryID == key.entryID && $0.1.node == key.origin }.map(\.1).min()
                #expect(kept.ts == earliest, "\(w)")
            }
        }
    }

    @Test func ledgerUnionIsCommutativeAssociativeAndIdempotent() async {
        await propertyCheck(count: 300, input: ledgerWrites) { w in
            var a = LedgerModel()
            var b = LedgerModel()
            var c = LedgerModel()
            for (i, (e, t)) in w.writes.enumerated() {
                if i < w.split { a.add(e, ts: t) } else { b.add(e, ts: t) }
                if i % 2 == 0 { c.add(e, ts: t) }
            }
            #expect(a.merged(with: b) == b.merged(with: a), "\(w)")
            #expect(a.merged(with: b).merged(with: c) == a.merged(with: b.merged(with: c)), "\(w)")
            #expect(a.merged(with: a) == a, "\(w)")
            #expect(a.merged(with: b).merged(with: b) == a.merged(with: b), "\(w)")
        }
    }

    /// A reversal that names its entry's origin cancels that entry, whatever entry of the same id
    /// and county another node made with an earlier clock.
    @Test func aReversalNamingItsOriginIgnoresABackdatedSquatter() {
        let victim = NodeID(high: 1, low: 0)
        let squatter = NodeID(high: 2, low: 0)
        let entries: [LedgerRule.Entry] = [
            .init(entryID: "e1", ts: Timestamp(millis: 2_000, counter: 0, node: victim), fields: ["county": .text("lintan"), "amount": .int(40)]),
            .init(entryID: "e1", ts: Timestamp(millis: 1_000, counter: 0, node: squatter), fields: ["county": .text("lintan"), "amount": .int(1)]),
            .init(
                entryID: "r1", ts: Timestamp(millis: 3_000, counter: 0, node: victim),
                fields: [
                    "county": .text("lintan"), "amount": .int(-40), Names.reversesField: .text("e1"), Names.reversesOriginField: .text(victim.hex),
                ]),
        ]
        #expect(LedgerRule.reversals(entries) == [2: .cancels(0)])
        var unpinned = entries
        unpinned[2].fields[Names.reversesOriginField] = nil
        #expect(LedgerRule.reversals(unpinned) == [2: .invalid("a reversal of e1 carries exactly the opposite of its numbers: amount:=-1")])
    }

    /// Which entry a reversal cancels depends on the set of entries only: every replica, whatever
    /// order entries reached it in, counts the same totals. An entry is cancelled at most once,
    /// only by a reversal of its county carrying exactly its opposite amount.
    @Test func reversalsCancelTheSameEntriesWhateverTheOrder() {
        var rng = SplitMix64(seed: 7)
        let nodes = (1...3).map { NodeID(high: UInt64($0), low: 0) }
        for round in 0..<300 {
            var entries: [LedgerRule.Entry] = []
            for i in 0..<Int(rng.next() % 6 + 1) {
                let county = ["lintan", "gangu"][Int(rng.next() % 2)]
                let ts = Timestamp(millis: 1_000 + rng.next() % 50, counter: UInt16(i), node: nodes[Int(rng.next() % 3)])
                entries.append(
                    .init(entryID: "e\(rng.next() % 3)", ts: ts, fields: ["county": .text(county), "amount": .int(Int64(rng.next() % 3 + 1))]))
            }
            for i in 0..<Int(rng.next() % 5) {
                let target = entries[Int(rng.next() % UInt64(entries.count))]
                let amount: Int64 = rng.next() % 4 == 0 ? 7 : -(target.fields["amount"].flatMap { if case .int(let a) = $0 { a } else { nil } } ?? 0)
                let county = rng.next() % 4 == 0 ? Value.text("chengde") : target.county!
                let ts = Timestamp(millis: 2_000 + rng.next() % 50, counter: UInt16(i), node: nodes[Int(rng.next() % 3)])
                entries.append(
                    .init(entryID: "r\(i)", ts: ts, fields: ["county": county, "amount": .int(amount), Names.reversesField: .text(target.entryID)]))
            }
            func cancelled(_ list: [LedgerRule.Entry]) -> [String: String] {
                var out: [String: String] = [:]
                for (r, verdict) in LedgerRule.reversals(list) {
                    if case .cancels(let t) = verdict { out["\(list[r].entryID)@\(list[r].ts)"] = "\(list[t].entryID)@\(list[t].ts)" }
                }
                return out
            }
            let expected = cancelled(entries)
            var shuffled = entries
            for i in shuffled.indices.reversed() { shuffled.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            #expect(cancelled(shuffled) == expected, "round \(round)")
            #expect(Set(expected.values).count == expected.count, "an entry is cancelled twice in round \(round)")
            for (r, verdict) in LedgerRule.reversals(entries) {
                guard case .cancels(let t) = verdict else { continue }
                #expect(entries[r].county == entries[t].county)
                #expect(entries[r].fields["amount"] == entries[t].fields["amount"].map { if case .int(let a) = $0 { .int(-a) } else { $0 } })
            }
        }
    }
}
