import Foundation
import Hummingbird
import HummingbirdTesting

/// Threads of their own for the in-process servers of tests (and the sync clients that talk to
/// them): a test that waits synchronously for a child process holds one of the few cooperative
/// threads (two on a two-core machine), and two of them at once used to stop every in-process
/// server of the run until curl's 20-second stall limit failed its test. Jobs enqueued here never
/// wait for the cooperative pool.
final class ServerThreads: TaskExecutor, @unchecked Sendable {
    static let shared = ServerThreads(count: 4)

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    private init(count: Int) {
        for n in 0..<count {
            let thread = Thread { [unowned self] in self.work() }
            thread.name = "test-server-\(n)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

extension ApplicationProtocol {
    /// `test(.live)` with the server, its connections and the test's body on `ServerThreads`.
    func testLive<Value>(_ body: @Sendable (any TestClientProtocol) async throws -> Value) async throws -> Value {
        try await withTaskExecutorPreference(ServerThreads.shared) { try await self.test(.live, body) }
    }
}
