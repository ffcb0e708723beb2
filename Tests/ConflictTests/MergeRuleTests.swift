import PropertyBased
import SyncProtocol
import Testing

/// The production merge rule (`MergeRule`, incremental over live versions, as `Store` runs it)
/// against the reference model (`FieldRegister`, a function of the set of all versions): fed the
/// same versions in any order, they must agree on the winner and the conflicts, and the live
/// versions must be exactly the register's heads plus its winner. The convergence tests make the
/// same comparison through real stores.
@Suite("Production merge rule against the reference model")
struct MergeRuleTests {
    /// A field as a store keeps it: live versions, retired ones (history) and replaced timestamps
    /// not held yet (`dangling_ref`).
    struct StoredField {
        var live: [LiveVersion] = []
        var history: Set<Timestamp> = []
        var dangling: Set<Timestamp> = []

        mutating func add(_ v: FieldVersion) -> Bool {
            let replaced = dangling.remove(v.ts) != nil
            guard let step = MergeRule.add(ts: v.ts, seq: 1, value: v.value, replacing: v.replaces, alreadyReplaced: replaced, to: live)
            else { return false }
            for old in step.notLive where !history.contains(old) { dangling.insert(old) }
            history.formUnion(step.retired.map(\.ts))
            live = step.live
            return true
        }
    }

    static func agree(_ field: StoredField, _ register: FieldRegister) -> Bool {
        let heads = Set(register.heads.map(\.ts))
        let expectedLive = heads.union(register.winner.map { [$0.ts] } ?? [])
        return MergeRule.winner(field.live)?.ts == register.winner?.ts
            && MergeRule.conflicts(field.live).map(\.ts) == register.conflicts.map(\.ts)
            && Set(field.live.map(\.ts)) == expectedLive
            && Set(field.live.filter(\.isHead).map(\.ts)) == heads
    }

    @Test func incrementalRuleAgreesWithTheReferenceInAnyOrder() async {
        await propertyCheck(count: 600, input: fieldHistories) { h in
            let register = FieldRegister(h.pool)
            for order in [h.pool, h.shuffled, h.shuffled.reversed()] {
                var field = StoredField()
                for v in order {
                    let added = field.add(v)
                    #expect(added, "\(h)")
                }
                #expect(Self.agree(field, register), "order \(order.map(\.ts.millis)): \(h)")
            }
        }
    }

    @Test func aClockAlreadyLiveIsRefused() {
        let ts = Timestamp(millis: 5, counter: 0, node: node(1))
        let first = MergeRule.add(ts: ts, seq: 1, value: .int(1), replacing: [], alreadyReplaced: false, to: [])
        #expect(first != nil)
        #expect(MergeRule.add(ts: ts, seq: 2, value: .int(2), replacing: [], alreadyReplaced: false, to: first!.live) == nil)
    }

    /// A deliberately wrong rule must be caught by the comparison above (the check can fail).
    @Test func theComparisonCatchesAWrongWinner() async {
        await propertyCheck(count: 200, input: fieldHistories) { h in
            var field = StoredField()
            for v in h.pool { _ = field.add(v) }
            // Mutant: a store that lost its winner.
            guard let winner = MergeRule.winner(field.live) else { return }
            var mutant = field
            mutant.live.removeAll { $0.ts == winner.ts }
            #expect(!Self.agree(mutant, FieldRegister(h.pool)), "\(h)")
        }
    }
}
