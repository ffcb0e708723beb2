import Foundation
import NIOPosix
import Synchronization

/// Lets at most `slots` pieces of work run at once; later ones wait in arrival order, and when
/// `maxWaiting` already wait, a newcomer is answered 503 at once instead of queueing.
public final class AdmissionGate: Sendable {
    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>
    private let maxWaiting: Int

    public init(slots: Int, maxWaiting: Int) {
        state = Mutex(State(free: max(1, slots)))
        self.maxWaiting = maxWaiting
    }

    /// Runs `work` once a slot is free.
    public func admit<T: Sendable>(_ work: () async throws -> T) async throws -> T {
        let entry = state.withLock { s -> GateEntry in
            if s.free > 0 {
                s.free -= 1
                return .now
            }
            return s.waiting.count >= maxWaiting ? .full : .wait
        }
        switch entry {
        case .full:
            throw APIErrorResponse(APIError(status: 503, code: "busy", message: "this node is processing too many requests; retry shortly"))
        case .wait:
            await withCheckedContinuation { continuation in
                let admitted = state.withLock { s -> Bool in
                    if s.free > 0 {
                        s.free -= 1
                        return true
                    }
                    s.waiting.append(continuation)
                    return false
                }
                if admitted { continuation.resume() }
            }
        case .now:
            break
        }
        defer { release() }
        return try await work()
    }

    private func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiting.isEmpty {
                s.free += 1
                return nil
            }
            return s.waiting.removeFirst()
        }
        // The slot passes straight to the next in line.
        next?.resume()
    }
}

private enum GateEntry { case now, wait, full }

/// Runs blocking work (SQLite, bcrypt) on a thread outside Swift's cooperative pool, which has
/// only as many threads as cores: a request, or a sync round under `serve`, that waits for the
/// database must not hold one of them. A pool of 32 threads (NIO's `NIOThreadPool`), up to 32
/// pieces at once: a Dispatch queue would run only as many as there are cores, so one long apply of
/// a large push on each core left every other request (health, a small pull, a web page) waiting
/// behind it.
public enum BlockingWork {
    private static let slots = 32
    private static let gate = AdmissionGate(slots: slots, maxWaiting: 4096)
    private static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: slots)
        pool.start()
        return pool
    }()
    private static let marker = "syncnode.blocking-work"

    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await gate.admit {
            try await pool.runIfActive {
                Thread.current.threadDictionary[marker] = true
                return try work()
            }
        }
    }

    /// Whether the calling code runs on one of these threads (and so not on the cooperative pool).
    static var isCurrentThread: Bool { Thread.current.threadDictionary[marker] as? Bool == true }
}
