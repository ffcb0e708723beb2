import Foundation
import Logging
import ServiceLifecycle
import SyncNode
import SyncProtocol

/// Keeps the PostgreSQL mirror current while `serve` runs: looks every `pollSeconds` whether the
/// node's vector moved since the last pass (so after every apply, whoever applied it: a push, a
/// pull, a bundle, a local write) and runs a pass when it did. The tables computed from
/// everything (conflicts, funds, review) are the costly part of a pass on a large node: they are
/// written at most every `derivedSeconds` while work keeps arriving, and once things are quiet;
/// every minute a pass runs anyway (forks and refusals the node learns of without new work).
/// While the server is down or refuses, it waits 1 s doubling up to a minute (±25 %) and tries
/// again; the node and its sync go on meanwhile, and `status` and `/metrics` show how far behind
/// the mirror is.
public struct MirrorService: Service {
    public let mirror: PostgresMirror
    let pollSeconds: Double
    let derivedSeconds: Double
    let logger: Logger

    public init(mirror: PostgresMirror, pollSeconds: Double = 0.25, derivedSeconds: Double = 5, logger: Logger) {
        self.mirror = mirror
        self.pollSeconds = pollSeconds
        self.derivedSeconds = derivedSeconds
        self.logger = logger
    }

    /// What the loop remembers between passes.
    private struct State {
        /// The node's vector when the last successful pass began.
        var passedAt: VersionVector?
        var derivedAt: ContinuousClock.Instant?
        var derivedStale = true
        var lastPass = ContinuousClock.now
        var failures = 0
        var lastError: String?
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var state = State()
            while !Task.isCancelled {
                let held = try? await BlockingWork.run { [store = mirror.store] in try store.vector() }
                let now = ContinuousClock.now
                let moved = held == nil || held != state.passedAt
                let derivedDue = state.derivedAt.map { now - $0 >= .seconds(derivedSeconds) } ?? true
                let quietAndStale = !moved && state.derivedStale
                let periodic = now - state.lastPass >= .seconds(60)
                if moved || quietAndStale || periodic {
                    let refresh = derivedDue || quietAndStale || periodic
                    if await pass(refreshDerived: refresh, &state) {
                        state.passedAt = held
                        if refresh {
                            state.derivedAt = now
                            state.derivedStale = false
                        } else if moved {
                            state.derivedStale = true
                        }
                    } else {
                        continue
                    }
                }
                try? await Task.sleep(for: .seconds(pollSeconds))
            }
        }
    }

    /// One pass; false after a failure (logged when it differs from the last, then waited out).
    private func pass(refreshDerived: Bool, _ state: inout State) async -> Bool {
        state.lastPass = .now
        do {
            let report = try await mirror.run(refreshDerived: refreshDerived)
            if state.failures > 0 { logger.info("the PostgreSQL mirror is reachable again", metadata: ["mirror.target": "\(mirror.target)"]) }
            state.failures = 0
            state.lastError = nil
            if report.transactions > 0 {
                logger.info(
                    "mirrored to PostgreSQL",
                    metadata: [
                        "mirror.transactions": .stringConvertible(report.transactions), "mirror.entries": .stringConvertible(report.entries),
                        "mirror.seconds": .stringConvertible(report.seconds),
                    ])
            }
            return true
        } catch {
            if Task.isCancelled { return false }
            state.failures += 1
            let message = (error as? SyncNodeError)?.message ?? "\(error)"
            if message != state.lastError { logger.warning("the PostgreSQL mirror failed; retrying", metadata: ["mirror.error": "\(message)"]) }
            state.lastError = message
            let wait = SyncScheduler.backoff(failures: state.failures, interval: 60, random: Double.random(in: 0..<1))
            try? await Task.sleep(for: .seconds(wait))
            return false
        }
    }
}
