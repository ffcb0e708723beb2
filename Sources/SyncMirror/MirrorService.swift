import Foundation
import Logging
import ServiceLifecycle
import SyncNode
import SyncProtocol

/// Keeps the PostgreSQL mirror current while `serve` runs, in two loops that never wait for each
/// other:
/// - the entries: every `pollSeconds` it looks whether the node's vector moved since the last
///   pass (after every apply, whoever applied it: a push, a pull, a bundle, a local write) and
///   runs a pass when it did, and once a minute anyway;
/// - the tables computed from everything (conflicts, nodes, funds, review), the costly part on a
///   large node: written again, on a connection of their own, at most every `derivedSeconds`, when
///   what they show may have changed.
/// While the server is down or refuses, each waits 1 s doubling up to a minute (±25 %) and tries
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

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await entries() }
                group.addTask { await derived() }
            }
        }
    }

    private func entries() async {
        var failures = Failures(logger: logger, target: mirror.target)
        var passedAt: VersionVector?
        var lastPass = ContinuousClock.now
        while !Task.isCancelled {
            let held = try? await BlockingWork.run { [store = mirror.store] in try store.vector() }
            if held == nil || held != passedAt || ContinuousClock.now - lastPass >= .seconds(60) {
                lastPass = .now
                do {
                    let report = try await mirror.run(refreshDerived: false)
                    passedAt = held
                    failures.succeeded()
                    if report.transactions > 0 {
                        logger.info(
                            "mirrored to PostgreSQL",
                            metadata: [
                                "mirror.transactions": .stringConvertible(report.transactions), "mirror.entries": .stringConvertible(report.entries),
                                "mirror.seconds": .stringConvertible(report.seconds),
                            ])
                    }
                } catch {
                    await failures.failed(error)
                    continue
                }
            }
            try? await Task.sleep(for: .seconds(pollSeconds))
        }
    }

    private func derived() async {
        var failures = Failures(logger: logger, target: mirror.target)
        while !Task.isCancelled {
            do {
                try await mirror.runDerived()
                failures.succeeded()
            } catch {
                await failures.failed(error)
                continue
            }
            try? await Task.sleep(for: .seconds(derivedSeconds))
        }
    }

    /// Consecutive failures of one loop: logged when the reason changes, then waited out.
    private struct Failures {
        let logger: Logger
        let target: PostgresTarget
        var count = 0
        var last: String?

        init(logger: Logger, target: PostgresTarget) {
            self.logger = logger
            self.target = target
        }

        mutating func succeeded() {
            if count > 0 { logger.info("the PostgreSQL mirror is reachable again", metadata: ["mirror.target": "\(target)"]) }
            count = 0
            last = nil
        }

        mutating func failed(_ error: any Error) async {
            if Task.isCancelled { return }
            count += 1
            let message = (error as? SyncNodeError)?.message ?? "\(error)"
            if message != last { logger.warning("the PostgreSQL mirror failed; retrying", metadata: ["mirror.error": "\(message)"]) }
            last = message
            try? await Task.sleep(for: .seconds(SyncScheduler.backoff(failures: count, interval: 60, random: Double.random(in: 0..<1))))
        }
    }
}
