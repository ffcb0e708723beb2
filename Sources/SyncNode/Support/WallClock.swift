import Foundation

/// The one place the node reads the time. Tests substitute their own.
public protocol WallClock: Sendable {
    /// Milliseconds since 1970-01-01 UTC.
    func nowMillis() -> UInt64
}

/// The system's real-time clock.
public struct SystemClock: WallClock {
    public init() {}

    public func nowMillis() -> UInt64 {
        UInt64(max(0, (Date().timeIntervalSince1970 * 1000).rounded(.down)))
    }
}

/// A clock that reads a fixed time plus whatever offset is set; for tests and for simulating a
/// node whose clock is wrong.
public final class ManualClock: WallClock, @unchecked Sendable {
    private let lock = NSLock()
    private var millis: UInt64

    public init(millis: UInt64) { self.millis = millis }

    public func nowMillis() -> UInt64 { lock.withLock { millis } }

    public func set(_ value: UInt64) { lock.withLock { millis = value } }

    public func advance(by delta: UInt64) { lock.withLock { millis += delta } }
}

/// A clock offset from another by a fixed amount (`SYNCNODE_CLOCK_OFFSET_MS`), used by the fault
/// harness to run a node with a skewed clock.
public struct OffsetClock: WallClock {
    let base: any WallClock
    let offsetMillis: Int64

    public init(base: any WallClock = SystemClock(), offsetMillis: Int64) {
        self.base = base
        self.offsetMillis = offsetMillis
    }

    public func nowMillis() -> UInt64 {
        let now = Int64(base.nowMillis()) + offsetMillis
        return UInt64(max(0, now))
    }
}

/// A time as people read it in logs and messages: `2026-11-25 21:56:16`, in UTC.
public enum UTCTime {
    public static func text(_ millis: UInt64) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }
}

extension Duration {
    /// The duration in seconds, for logs and metrics.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
