import Crypto
import Foundation

/// The X25519 keys bundles are sealed to, derived from each node's Ed25519 key: the registry
/// already carries every node's Ed25519 public key, so every node can seal to every other with no
/// new key to hand out, approve or back up.
///
/// An Ed25519 public key is the y coordinate of a point on the Edwards curve; the same point's u
/// coordinate on the Montgomery curve, u = (1 + y) / (1 − y) mod 2^255 − 19, is an X25519 public
/// key. Its private scalar is the Ed25519 one: the first half of SHA-512 of the 32-byte seed, which
/// X25519 clamps the same way. (The conversion is the one libsodium and age's ssh-ed25519
/// recipients use; only public values pass through the arithmetic below.)
enum SealKey {
    /// The X25519 private key of a node whose Ed25519 seed is `seed`.
    static func privateKey(seed: [UInt8]) -> Curve25519.KeyAgreement.PrivateKey {
        let scalar = Array(SHA512.hash(data: seed).prefix(32))
        // 32 bytes always make a key.
        return try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: scalar)
    }

    /// The X25519 public key matching Ed25519 public key `key`; nil for bytes that are not a
    /// usable point (y = 1 has no Montgomery image; y ≥ p is not canonical).
    static func publicKey(_ key: PublicKeyText) -> Curve25519.KeyAgreement.PublicKey? {
        guard key.bytes.count == 32 else { return nil }
        var y = FieldElement(littleEndian: key.bytes)
        y.limbs.3 &= 0x7FFF_FFFF_FFFF_FFFF  // the top bit is the sign of x
        guard y.isCanonical else { return nil }
        let denominator = FieldElement.one - y
        guard denominator != .zero else { return nil }
        let u = (FieldElement.one + y) * denominator.inverse
        return try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: u.littleEndianBytes)
    }
}

/// An integer modulo p = 2^255 − 19, always fully reduced (0 ≤ value < p), as four 64-bit limbs,
/// least significant first. Enough arithmetic for one conversion; not constant-time, so never
/// given a secret.
struct FieldElement: Equatable {
    var limbs: (UInt64, UInt64, UInt64, UInt64)

    static let zero = FieldElement(0, 0, 0, 0)
    static let one = FieldElement(1, 0, 0, 0)
    static let p = FieldElement(0xFFFF_FFFF_FFFF_FFED, .max, .max, 0x7FFF_FFFF_FFFF_FFFF)

    init(_ l0: UInt64, _ l1: UInt64, _ l2: UInt64, _ l3: UInt64) { limbs = (l0, l1, l2, l3) }

    init(littleEndian bytes: [UInt8]) {
        var words: [UInt64] = [0, 0, 0, 0]
        for (i, byte) in bytes.prefix(32).enumerated() { words[i / 8] |= UInt64(byte) << (8 * UInt64(i % 8)) }
        limbs = (words[0], words[1], words[2], words[3])
    }

    var words: [UInt64] { [limbs.0, limbs.1, limbs.2, limbs.3] }

    init(words w: [UInt64]) { limbs = (w[0], w[1], w[2], w[3]) }

    static func == (a: FieldElement, b: FieldElement) -> Bool { a.words == b.words }

    var littleEndianBytes: [UInt8] { words.flatMap { w in (0..<8).map { UInt8(truncatingIfNeeded: w >> (8 * UInt64($0))) } } }

    /// Whether the value is below p (as every result of the arithmetic is).
    var isCanonical: Bool { Self.less(words, Self.p.words) }

    static func less(_ a: [UInt64], _ b: [UInt64]) -> Bool {
        for i in (0..<4).reversed() where a[i] != b[i] { return a[i] < b[i] }
        return false
    }

    /// Reduces a value below 2^256 + 2^64·38 given as four limbs and a carry into 0..<p.
    private static func reduce(_ w: [UInt64], carry: UInt64) -> FieldElement {
        // 2^256 ≡ 38 (mod p): fold the carry in, twice at most.
        var w = w
        var c = UInt128(carry) * 38
        for _ in 0..<2 {
            for i in 0..<4 {
                let s = UInt128(w[i]) + c
                w[i] = UInt64(truncatingIfNeeded: s)
                c = s >> 64
            }
            c *= 38
        }
        // 2^255 ≡ 19: fold the top bit in, then subtract p once if still at or above it.
        let top = w[3] >> 63
        w[3] &= 0x7FFF_FFFF_FFFF_FFFF
        var s = UInt128(w[0]) + UInt128(top * 19)
        w[0] = UInt64(truncatingIfNeeded: s)
        for i in 1..<4 {
            s = UInt128(w[i]) + (s >> 64)
            w[i] = UInt64(truncatingIfNeeded: s)
        }
        if !less(w, p.words) {
            var borrow: UInt64 = 0
            let pw = p.words
            for i in 0..<4 {
                let (d1, b1) = w[i].subtractingReportingOverflow(pw[i])
                let (d2, b2) = d1.subtractingReportingOverflow(borrow)
                w[i] = d2
                borrow = (b1 ? 1 : 0) + (b2 ? 1 : 0)
            }
        }
        return FieldElement(words: w)
    }

    static func + (a: FieldElement, b: FieldElement) -> FieldElement {
        let (x, y) = (a.words, b.words)
        var w: [UInt64] = [0, 0, 0, 0]
        var c: UInt128 = 0
        for i in 0..<4 {
            let s = UInt128(x[i]) + UInt128(y[i]) + c
            w[i] = UInt64(truncatingIfNeeded: s)
            c = s >> 64
        }
        return reduce(w, carry: UInt64(c))
    }

    static func - (a: FieldElement, b: FieldElement) -> FieldElement {
        // a + (p − b): both terms below p, so the sum is below 2p.
        let (pw, y) = (p.words, b.words)
        var negated: [UInt64] = [0, 0, 0, 0]
        var borrow: UInt64 = 0
        for i in 0..<4 {
            let (d1, b1) = pw[i].subtractingReportingOverflow(y[i])
            let (d2, b2) = d1.subtractingReportingOverflow(borrow)
            negated[i] = d2
            borrow = (b1 ? 1 : 0) + (b2 ? 1 : 0)
        }
        return a + reduce(negated, carry: 0)
    }

    static func * (a: FieldElement, b: FieldElement) -> FieldElement {
        let (x, y) = (a.words, b.words)
        var t = [UInt64](repeating: 0, count: 8)
        for i in 0..<4 {
            var carry: UInt128 = 0
            for j in 0..<4 {
                let s = UInt128(x[i]) * UInt128(y[j]) + UInt128(t[i + j]) + carry
                t[i + j] = UInt64(truncatingIfNeeded: s)
                carry = s >> 64
            }
            t[i + 4] = UInt64(carry)
        }
        // Low half + 38 × high half.
        var w: [UInt64] = [0, 0, 0, 0]
        var c: UInt128 = 0
        for i in 0..<4 {
            let s = UInt128(t[i]) + UInt128(t[i + 4]) * 38 + c
            w[i] = UInt64(truncatingIfNeeded: s)
            c = s >> 64
        }
        return reduce(w, carry: UInt64(c))
    }

    /// The multiplicative inverse, a^(p − 2) (zero stays zero).
    var inverse: FieldElement {
        var result = FieldElement.one
        var base = self
        // p − 2 = 2^255 − 21, least significant bit first.
        let exponent = FieldElement.p.words.enumerated().map { $0.offset == 0 ? $0.element - 2 : $0.element }
        for word in exponent {
            for bit in 0..<64 {
                if (word >> UInt64(bit)) & 1 == 1 { result = result * base }
                base = base * base
            }
        }
        return result
    }
}
