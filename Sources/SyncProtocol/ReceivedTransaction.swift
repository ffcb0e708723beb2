import Foundation

/// A transaction as received: decoded, with the exact bytes its origin encoded (kept in the log and
/// relayed unchanged) and the origin's signature over them.
///
/// A node that refused a transaction relays the signed original, and every receiver judges it for
/// itself. Version 2 senders put an unsigned *refusal statement* (`K` frame, `refusal` set, no body)
/// in its place; such a statement is read but never believed: nobody may make a receiver pass over
/// another node's transaction by saying so (docs/PROTOCOL.md, trust rules).
public struct ReceivedTransaction: Sendable, Equatable {
    /// Equal when they carry the same transaction, bytes, signature and refusal (how a copy was
    /// vouched for does not make it another transaction).
    public static func == (lhs: ReceivedTransaction, rhs: ReceivedTransaction) -> Bool {
        lhs.transaction == rhs.transaction && lhs.body == rhs.body && lhs.signature == rhs.signature && lhs.refusal == rhs.refusal
    }

    public let transaction: Transaction
    public let body: [UInt8]
    public var signature: [UInt8]
    public var refusal: Refusal?
    /// The trust anchor vouched for this copy (see `BatchHeader.vouch`): its origin's signature
    /// need not be verified again. Never set from anything a peer sends without HQ's signature.
    package var vouched = false
    /// HQ's verdict on this copy, under its vouch (see `BatchHeader.refusedFrames`).
    package var anchorVerdict: AnchorVerdict?

    package enum AnchorVerdict: Sendable, Equatable {
        case accepted
        case refused(String)
    }

    public init(transaction: Transaction, body: [UInt8], signature: [UInt8] = [], refusal: Refusal? = nil) {
        self.transaction = transaction
        self.body = body
        self.signature = signature
        self.refusal = refusal
    }

    /// Decodes one encoded transaction (without signature).
    public init(body: [UInt8]) throws(WireError) {
        self.transaction = try WireCodec.decode(body)
        self.body = body
        self.signature = []
        self.refusal = nil
    }

    /// The frame that carries it in a batch: `T` + 64-byte signature + transaction bytes (a
    /// refusal statement read from a version 2 sender is written back as its `K` frame).
    public var frame: [UInt8] {
        if let refusal {
            let skip = SkipFrame(o: refusal.origin, s: refusal.seq, t: transaction.hlc.clockHex, r: refusal.reason, by: refusal.refusedBy)
            return [UInt8(ascii: "K")] + ((try? WireCodec.encodeMessage(skip)) ?? [])
        }
        return Self.frame(signature: signature, body: body)
    }

    /// The one place a transaction frame is built: `T`, the 64-byte signature (zeros when there is
    /// none), the transaction bytes.
    package static func frame(signature: some Collection<UInt8>, body: some Collection<UInt8>) -> [UInt8] {
        var frame = [UInt8]()
        frame.reserveCapacity(65 + body.count)
        frame.append(UInt8(ascii: "T"))
        if signature.count == 64 { frame += signature } else { frame += repeatElement(0, count: 64) }
        frame += body
        return frame
    }

    /// Decodes a frame made by `frame`.
    public init(frame: some Collection<UInt8>) throws(WireError) {
        let bytes = Array(frame)
        switch bytes.first {
        case UInt8(ascii: "T")?:
            guard bytes.count > 65 else { throw .framing("a transaction frame is truncated") }
            self = try ReceivedTransaction(body: Array(bytes[65...]))
            signature = Array(bytes[1..<65])
        case UInt8(ascii: "K")?:
            let skip: SkipFrame
            do {
                skip = try WireCodec.decodeMessage(SkipFrame.self, from: bytes.dropFirst())
            } catch {
                throw .framing("a refusal frame is malformed")
            }
            guard skip.s > 0, let hlc = Timestamp(clockHex: skip.t, node: skip.o) else {
                throw .framing("a refusal frame is malformed")
            }
            self.init(
                transaction: Transaction(origin: skip.o, seq: skip.s, hlc: hlc, changes: []), body: [],
                refusal: Refusal(origin: skip.o, seq: skip.s, reason: skip.r, refusedBy: skip.by))
        default:
            throw .framing("a frame starts with neither T (transaction) nor K (refusal)")
        }
    }
}

/// Wire form of a version 2 refusal statement (read, never believed, never sent).
struct SkipFrame: Codable {
    var o: NodeID
    var s: UInt64
    var t: String
    var r: String
    var by: String
}
