import Foundation
import PropertyBased
import SyncNode
import SyncProtocol
import Testing

/// A wall-clock script: each step moves the clock forward, leaves it, or sets it back.
struct WallScript: Sendable, CustomStringConvertible {
    var start: UInt64
    var steps: [Int64]

    var description: String { "start \(start) steps \(steps)" }

    /// The readings the script produces, never below zero.
    var readings: [UInt64] {
        var now = Int64(start)
        return steps.map { step in
            now = max(0, now + step)
            return UInt64(now)
        }
    }
}

let wallScripts = Generator<WallScript, Shrink.None<WallScript>>(run: { rng in
    let steps = (0..<Int.random(in: 1...200, using: &rng)).map { _ -> Int64 in
        switch Int.random(in: 0..<10, using: &rng) {
        case 0..<4: return 0
        case 4..<8: return Int64.random(in: 1...50, using: &rng)
        case 8: return -Int64.random(in: 1...100, using: &rng)
        default: return -Int64.random(in: 1_000...100_000, using: &rng)
        }
    }
    return WallScript(start: UInt64.random(in: 0...1_800_000_000_000, using: &rng), steps: steps)
})

@Suite("Hybrid logical clock")
struct ClockTests {
    let me = node(1)
    let peer = node(2)

    @Test func ticksIncreaseUnderAnAdvancingWallClock() throws {
        var clock = HybridClock(node: me)
        var last = try clock.tick(now: 1_000)
        #expect(last == Timestamp(millis: 1_000, counter: 0, node: me))
        for now in stride(from: UInt64(1_001), through: 1_500, by: 7) {
            let t = try clock.tick(now: now)
            #expect(t > last)
            #expect(t.millis == now)
            #expect(t.counter == 0)
            #expect(t.node == me)
            last = t
        }
    }

    @Test func stutteringWallClockIncrementsTheCounter() throws {
        var clock = HybridClock(node: me)
        for expected in UInt16(0)..<500 {
            let t = try clock.tick(now: 42_000)
            #expect(t == Timestamp(millis: 42_000, counter: expected, node: me))
        }
        // The next millisecond resets the counter.
        #expect(try clock.tick(now: 42_001) == Timestamp(millis: 42_001, counter: 0, node: me))
    }

    @Test func regressingWallClockStillYieldsIncreasingTimestamps() throws {
        var clock = HybridClock(node: me)
        let first = try clock.tick(now: 10_000)
        let second = try clock.tick(now: 9_000)
        let third = try clock.tick(now: 5)
        #expect(first < second)
        #expect(second < third)
        #expect(second == Timestamp(millis: 10_000, counter: 1, node: me))
        #expect(third == Timestamp(millis: 10_000, counter: 2, node: me))
        // Once the wall clock passes the high-water mark again, it takes over.
        #expect(try clock.tick(now: 10_001) == Timestamp(millis: 10_001, counter: 0, node: me))
    }

    @Test func ticksAreStrictlyIncreasingForAnyWallClockScript() async {
        await propertyCheck(count: 200, input: wallScripts) { script in
            var clock = HybridClock(node: me)
            var last: Timestamp?
            for now in script.readings {
                let t = try clock.tick(now: now)
                if let last { #expect(last < t, "\(script)") }
                #expect(t.millis >= now, "never behind the wall clock: \(script)")
                #expect(clock.current == t, "\(script)")
                last = t
            }
        }
    }

    @Test func remoteTooFarAheadIsRefusedWithNodeAndSkew() throws {
        var clock = HybridClock(node: me, millis: 500, counter: 0, maxDriftMillis: 60_000)
        let now: UInt64 = 1_000_000
        let remote = Timestamp(millis: now + 60_001, counter: 0, node: peer)
        let expected = ClockError.remoteAhead(node: peer, skewMillis: 60_001, maxDriftMillis: 60_000)
        #expect(throws: expected) { try clock.check(remote: remote, now: now) }
        let before = clock
        #expect(throws: expected) { try clock.observe(remote: remote, now: now) }
        #expect(clock == before, "a refused observation leaves the clock unchanged")
        #expect("\(expected)".contains(peer.short))
    }

    @Test func remoteExactlyAtTheDriftLimitIsAccepted() throws {
        var clock = HybridClock(node: me, maxDriftMillis: 60_000)
        let now: UInt64 = 1_000_000
        let remote = Timestamp(millis: now + 60_000, counter: 9, node: peer)
        try clock.check(remote: remote, now: now)
        try clock.observe(remote: remote, now: now)
        #expect(clock.current == Timestamp(millis: now + 60_000, counter: 9, node: me))
        // A remote behind this node's wall clock is never refused.
        try clock.observe(remote: Timestamp(millis: 0, counter: 0, node: peer), now: now)
    }

    @Test func defaultDriftLimitIsTenMinutes() {
        #expect(HybridClock.defaultMaxDriftMillis == 600_000)
        let clock = HybridClock(node: me)
        #expect(throws: ClockError.remoteAhead(node: peer, skewMillis: 600_001, maxDriftMillis: 600_000)) {
            try clock.check(remote: Timestamp(millis: 600_001, counter: 0, node: peer), now: 0)
        }
    }

    @Test func counterOverflowThrows() throws {
        var clock = HybridClock(node: me, millis: 7_000, counter: UInt16.max - 1)
        #expect(try clock.tick(now: 7_000) == Timestamp(millis: 7_000, counter: .max, node: me))
        let before = clock
        #expect(throws: ClockError.counterOverflow) { try clock.tick(now: 7_000) }
        #expect(throws: ClockError.counterOverflow) { try clock.tick(now: 6_000) }
        #expect(clock == before)
        // A new millisecond lets the clock go on.
        #expect(try clock.tick(now: 7_001) == Timestamp(millis: 7_001, counter: 0, node: me))
    }

    @Test func observingARemoteCounterAtItsLimitOverflowsTheNextTickInThatMillisecond() throws {
        var clock = HybridClock(node: me)
        try clock.observe(remote: Timestamp(millis: 5_000, counter: .max, node: peer), now: 5_000)
        #expect(throws: ClockError.counterOverflow) { try clock.tick(now: 5_000) }
        #expect(try clock.tick(now: 5_001) > Timestamp(millis: 5_000, counter: .max, node: peer))
    }

    @Test func wallClockBeyondFortyEightBitsIsRefused() {
        var clock = HybridClock(node: me)
        #expect(throws: ClockError.wallClockOutOfRange(millis: Timestamp.maxMillis + 1)) { try clock.tick(now: Timestamp.maxMillis + 1) }
    }

    @Test func observeMakesTheNextTickGreaterThanTheRemote() async {
        let cases = Generator<(UInt64, UInt64, UInt16, UInt64, UInt16), Shrink.None<(UInt64, UInt64, UInt16, UInt64, UInt16)>>(run: { rng in
            let now = UInt64.random(in: 1_000_000...1_000_100, using: &rng)
            return (
                now, UInt64.random(in: 999_000...1_000_200, using: &rng), UInt16.random(in: 0...3, using: &rng),
                UInt64.random(in: 999_900...1_000_200, using: &rng), UInt16.random(in: 0...(UInt16.max - 1), using: &rng)
            )
        })
        await propertyCheck(count: 300, input: cases) { now, localMillis, localCounter, remoteMillis, remoteCounter in
            for (remoteNode, label) in [(node(0), "smaller node id"), (node(3), "greater node id")] {
                var clock = HybridClock(node: node(2), millis: localMillis, counter: localCounter)
                let remote = Timestamp(millis: remoteMillis, counter: remoteCounter, node: remoteNode)
                try clock.observe(remote: remote, now: now)
                #expect(clock.current.millis >= remoteMillis)
                let next = try clock.tick(now: now)
                #expect(next > remote, "\(label): now \(now) local \(localMillis).\(localCounter) remote \(remoteMillis).\(remoteCounter)")
                #expect(next > Timestamp(millis: localMillis, counter: localCounter, node: node(2)))
            }
        }
    }

    // MARK: - Storage

    @Test func storeClockHighWaterSurvivesReopenWithWallClockSetBack() throws {
        let dir = TempDir("clock")
        defer { dir.remove() }
        let clock = ManualClock(millis: 5_000_000)
        var before: [Timestamp] = []
        do {
            let store = try Store.create(in: dir.sub("n"), site: "site", label: nil, clock: clock)
            for i in 0..<3 {
                before.append(try store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("n", .int(Int64(i)))])]).hlc)
            }
            clock.advance(by: 10)
            before.append(try store.commit([.append(ledger: "cash", entryID: "e1", fields: [FieldAssignment("amount", .int(5))])]).hlc)
            #expect(try store.clockHighWater() == before.last!)
            try store.close()
        }
        clock.set(1_000)  // the wall clock went back by more than an hour
        let reopened = try Store.open(dir.sub("n"), clock: clock)
        #expect(try reopened.clockHighWater() == before.last!)
        let after = try reopened.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("n", .int(9))])]).hlc
        #expect(after > before.last!)
        #expect(after.millis == before.last!.millis)
        #expect(try reopened.record("c", "r")?.fields["n"] == .int(9), "the newest write wins although the wall clock is earlier")
        try reopened.close()
    }

    @Test func storeClockFoldsInRemoteTimestampsAcrossReopen() throws {
        let dir = TempDir("clock")
        defer { dir.remove() }
        let fast = try Replica.make(in: dir, "fast", millis: 9_000_000)
        let slowClock = ManualClock(millis: 8_900_000)
        do {
            let slow = try Store.create(in: dir.sub("slow"), site: "site", label: nil, clock: slowClock)
            let remote = try fast.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("n", .int(1))])]).hlc
            try exchange(from: fast.store, to: slow)
            #expect(try slow.clockHighWater().millis == remote.millis)
            try slow.close()
        }
        let slow = try Store.open(dir.sub("slow"), clock: slowClock)
        let local = try slow.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("n", .int(2))])])
        #expect(local.hlc.millis == 9_000_000)
        #expect(local.hlc.counter == 1)
        #expect(try slow.record("c", "r")?.fields["n"] == .int(2), "an edit made after seeing a remote write replaces it")
        #expect(try slow.conflicts().isEmpty)
        try slow.close()
        try fast.store.close()
    }

    @Test func storeRefusesABatchFromANodeTooFarAhead() throws {
        let dir = TempDir("clock")
        defer { dir.remove() }
        let ahead = try Replica.make(in: dir, "ahead", millis: 100_000_000)
        let behind = try Replica.make(in: dir, "behind", millis: 100_000_000 - HybridClock.defaultMaxDriftMillis - 1)
        try ahead.store.commit([.put(collection: "c", recordID: "r", fields: [FieldAssignment("n", .int(1))])])
        let missing = try ahead.store.transactions(missingFrom: behind.store.vector()).transactions
        let error = #expect(throws: SyncNodeError.self) { try behind.store.apply(missing) }
        #expect(error?.code == .clockSkew)
        #expect(try behind.store.vector() == VersionVector())
        behind.clock.advance(by: 1)  // now exactly at the limit
        #expect(try behind.store.apply(missing).applied == 1)
    }
}
