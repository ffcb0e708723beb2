import Foundation
import Logging
import ServiceLifecycle
import SyncNode
import SyncProtocol

/// Keeps the PostgreSQL mirror current while `serve` runs: looks every `pollSeconds` whether the
/// node holds transactions the mirror lacks, and runs a pass when it does (so after every apply,
/// whoever applied it: a push, a pull, a bundle, a local write). While the server is down or
/// refuses, it waits 1 s doubling up to a minute (±25 %) and tries again; the node and its sync
/// go on meanwhile, and `status` and `/metrics` show how far behind the mirror is.
public struct MirrorService: Service {
    public let mirror: PostgresMirror
    let pollSeconds: Double
    let logger: Logger

    public init(mirror: PostgresMirror, pollSeconds: Double = 0.25, logger: Logger) {
        self.mirror = mirror
        self.pollSeconds = pollSeconds
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var mirrored: UInt64?
            var failures = 0
            var lastError: String?
            while !Task.isCancelled {
                let held = (try? await BlockingWork.run { [store = mirror.store] in try store.vector().total }) ?? 0
                if mirrored != held {
                    do {
                        let report = try await mirror.run()
                        mirrored = report.current ? report.mirrored : nil
                        if failures > 0 { logger.info("the PostgreSQL mirror is reachable again", metadata: ["mirror.target": "\(mirror.target)"]) }
                        failures = 0
                        lastError = nil
                        if report.transactions > 0 {
                            logger.info(
                                "mirrored to PostgreSQL",
                                metadata: [
                                    "mirror.transactions": .stringConvertible(report.transactions),
                                    "mirror.entries": .stringConvertible(report.entries),
                                    "mirror.seconds": .stringConvertible(report.seconds),
                                ])
                        }
                    } catch {
                        failures += 1
                        let message = (error as? SyncNodeError)?.message ?? "\(error)"
                        if message != lastError { logger.warning("the PostgreSQL mirror failed; retrying", metadata: ["mirror.error": "\(message)"]) }
                        lastError = message
                        let wait = SyncScheduler.backoff(failures: failures, interval: 60, random: Double.random(in: 0..<1))
                        try? await Task.sleep(for: .seconds(wait))
                        continue
                    }
                }
                try? await Task.sleep(for: .seconds(pollSeconds))
            }
        }
    }
}
