import Foundation
import SyncNode
import SyncProtocol
import Testing

/// Inputs found by `syncnode-fuzz` and the defects they exposed, replayed on every test run.
@Suite struct FuzzRegressionTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/fuzz")

    /// Two transactions of one origin with the same clock writing the same field (a faulty or
    /// forged origin: an honest one never reuses a clock). The receiver answered 503 "storage
    /// unavailable" (a UNIQUE constraint of field_version), so the sender retried forever and
    /// the operator was told to check the disk. It must be refused as a protocol violation.
    static func reusedClockBatch(origin: NodeID) throws -> [ReceivedTransaction] {
        let clock = Timestamp(millis: 1_700_000_000_000, counter: 0, node: origin)
        return [1, 2].map { seq in
            let t = Transaction(
                origin: origin, seq: UInt64(seq), hlc: clock,
                changes: [.set(FieldWrite(collection: "projects", recordID: "lt-school", field: "progress_pct", value: .int(Int64(seq * 10))))])
            return ReceivedTransaction(transaction: t, body: WireCodec.encode(t))
        }
    }

    @Test func aReusedClockIsAProtocolViolationNotAStorageError() throws {
        let node = try TestNode(millis: 1_700_000_100_000)
        defer { node.remove() }
        let origin = NodeID(high: 0x1234, low: 0x5678)
        let batch = try Self.reusedClockBatch(origin: origin)
        #expect(throws: SyncNodeError.self) { try node.store.apply(batch) }
        do {
            _ = try node.store.apply(batch)
        } catch {
            #expect(error.code == .protocolViolation)
            #expect(error.exitCode == 76)
            #expect(error.message.contains("not later than its origin's previous transaction"))
        }
        // Nothing of the chunk was applied.
        #expect(try node.store.vector().entries[origin] == nil)
        #expect(try node.store.record("projects", "lt-school") == nil)
    }

    @Test func pushOfAReusedClockIsAnswered422() throws {
        let node = try TestNode(millis: 1_700_000_100_000)
        defer { node.remove() }
        let batch = try Self.reusedClockBatch(origin: NodeID(high: 0xAB, low: 0xCD))
        let header = BatchHeader(
            from: PeerIdentity(node: NodeID(high: 0xAB, low: 0xCD), site: "lintan", label: "lt"), count: 2, more: false, clock: 1_700_000_000_000)
        let body = BatchCodec.encode(header: try WireCodec.encodeMessage(header), frames: batch.map(\.frame))
        do {
            _ = try SyncService(store: node.store).push(body: body)
            Issue.record("a batch reusing a clock was accepted")
        } catch {
            #expect(error.status == 422)
            #expect(error.code == "protocol_violation")
        }
    }

    /// Every saved input through every decoder and both endpoints: refused cleanly or accepted,
    /// never a crash, never a 5xx.
    @Test func savedInputsAreRefusedCleanly() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.path).filter { !$0.hasPrefix(".") }.sorted()
        #expect(!files.isEmpty)
        for file in files {
            let node = try TestNode(millis: 1_700_000_100_000)
            defer { node.remove() }
            let bytes = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent(file)))
            _ = try? WireCodec.decode(bytes)
            if let (_, frames) = try? BatchCodec.decode(bytes) {
                for frame in frames { _ = try? ReceivedTransaction(frame: frame) }
            }
            _ = try? ReceivedTransaction(frame: bytes)
            do {
                _ = try BundleFile(decoding: bytes)
            } catch {
                #expect(error.code == .corruptBundle, "\(file)")
            }
            let service = SyncService(store: node.store)
            do {
                _ = try service.push(body: bytes)
            } catch {
                #expect(error.status < 500, "\(file): \(error)")
            }
            do {
                _ = try service.pull(body: bytes)
            } catch {
                #expect(error.status < 500, "\(file): \(error)")
            }
        }
    }
}
