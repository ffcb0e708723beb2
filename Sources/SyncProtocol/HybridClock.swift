/// Why the hybrid logical clock refused to produce or accept a timestamp.
public enum ClockError: Error, Equatable, Sendable, CustomStringConvertible {
    /// More than 65,535 events in one millisecond, or a remote counter already at its limit.
    case counterOverflow
    /// A remote timestamp lies further ahead of this node's wall clock than `maxDrift` allows.
    case remoteAhead(node: NodeID, skewMillis: UInt64, maxDriftMillis: UInt64)
    /// The wall clock reads beyond what 48 bits of milliseconds can hold.
    case wallClockOutOfRange(millis: UInt64)

    public var description: String {
        switch self {
        case .counterOverflow:
            return "the hybrid clock counter overflowed (more than 65535 events in one millisecond); retry in a moment"
        case .remoteAhead(let node, let skew, let limit):
            return "node \(node.short)'s clock is \(DurationText.describe(millis: skew)) ahead of this node "
                + "(the limit is \(DurationText.describe(millis: limit))); fix that node's clock, or this one's if it is behind"
        case .wallClockOutOfRange(let millis):
            return "the wall clock reads \(millis) ms since 1970, beyond the clock's range; fix the system clock"
        }
    }
}

/// A hybrid logical clock as pure functions of (state, wall-clock reading). It never reads the time itself.
///
/// The state is the high-water mark: the greatest timestamp this node has issued or seen. Persist it
/// with every write that uses it, so the clock never goes backwards across restarts.
public struct HybridClock: Equatable, Sendable {
    public static let defaultMaxDriftMillis: UInt64 = 10 * 60 * 1000

    public let node: NodeID
    public private(set) var millis: UInt64
    public private(set) var counter: UInt16
    public let maxDriftMillis: UInt64

    public init(node: NodeID, millis: UInt64 = 0, counter: UInt16 = 0, maxDriftMillis: UInt64 = defaultMaxDriftMillis) {
        self.node = node
        self.millis = millis
        self.counter = counter
        self.maxDriftMillis = maxDriftMillis
    }

    /// The high-water mark as a timestamp of this node.
    public var current: Timestamp { Timestamp(millis: millis, counter: counter, node: node) }

    /// Issues a timestamp for a local event: greater than everything issued or seen before.
    public mutating func tick(now: UInt64) throws(ClockError) -> Timestamp {
        guard now <= Timestamp.maxMillis else { throw .wallClockOutOfRange(millis: now) }
        if now > millis {
            millis = now
            counter = 0
        } else {
            guard counter < UInt16.max else { throw .counterOverflow }
            counter += 1
        }
        return current
    }

    /// Checks a remote timestamp against the drift limit without changing the clock.
    public func check(remote: Timestamp, now: UInt64) throws(ClockError) {
        if remote.millis > now, remote.millis - now > maxDriftMillis {
            throw .remoteAhead(node: remote.node, skewMillis: remote.millis - now, maxDriftMillis: maxDriftMillis)
        }
    }

    /// Folds a remote timestamp into the clock so later local events order after it.
    /// Refuses (and leaves the clock unchanged) when the remote clock is too far ahead.
    public mutating func observe(remote: Timestamp, now: UInt64) throws(ClockError) {
        try check(remote: remote, now: now)
        if (remote.millis, remote.counter) > (millis, counter) {
            millis = remote.millis
            counter = remote.counter
        }
    }
}

/// Durations for messages: the largest whole unit, "3 days", "12 minutes", "800 ms".
public enum DurationText {
    public static func describe(millis: UInt64) -> String {
        let units: [(UInt64, String)] = [(86_400_000, "day"), (3_600_000, "hour"), (60_000, "minute"), (1000, "second")]
        for (size, name) in units where millis >= size {
            let n = millis / size
            return "\(n) \(name)\(n == 1 ? "" : "s")"
        }
        return "\(millis) ms"
    }
}
