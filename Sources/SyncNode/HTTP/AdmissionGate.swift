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
///
/// The pool starts all its threads with the first piece of work. A process that runs one sync
/// round and ends (the `sync` command: a few pieces, one after another) runs them on the calling
/// thread instead (`configure(threads: 0)`, `Syncer.configureForOneShotProcess`).
public enum BlockingWork {
    /// The number of threads when nothing was configured: enough for `serve`.
    public static let defaultThreads = 32
    private static let requested = Mutex<Int?>(nil)
    /// The size in effect, fixed at first use; 0: on the calling thread.
    private static let threads: Int = requested.withLock { value in
        let n = value ?? defaultThreads
        value = n
        return n
    }
    private static let running: (gate: AdmissionGate, pool: NIOThreadPool) = {
        let slots = max(1, threads)
        let pool = NIOThreadPool(numberOfThreads: slots)
        pool.start()
        return (AdmissionGate(slots: slots, maxWaiting: 4096), pool)
    }()
    private static let marker = "syncnode.blocking-work"

    /// Sets the pool's size before its first use; once the pool runs, its size stays. 0 runs each
    /// piece on the calling thread: for a process with nothing else on its cooperative threads to
    /// keep answering (`sync` run once), where each hop to another thread only waits to be
    /// scheduled. Returns the size in effect.
    @discardableResult
    public static func configure(threads: Int) -> Int {
        requested.withLock { value in
            if value == nil { value = max(0, threads) }
            return value!
        }
    }

    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        if threads == 0 { return try work() }
        let (gate, pool) = running
        return try await gate.admit {
            try await pool.runIfActive {
                Thread.current.threadDictionary[marker] = true
                return try work()
            }
        }
    }

    /// Whether the calling code runs on one of these threads (and so not on the cooperative pool).
    static var isCurrentThread: Bool { Thread.current.threadDictionary[marker] as? Bool == true }
}
