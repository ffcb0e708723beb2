import Foundation
import Logging
import ServiceLifecycle
import SyncProtocol

/// Syncs with every remembered peer periodically while `serve` runs: every `interval` after a
/// success, with exponential backoff and jitter while a peer is unreachable, and at once after a
/// local write when the peer was reachable at the last attempt.
public struct SyncScheduler: Service {
    public let store: Store
    public let interval: Double
    public let client: CurlClient
    public let limits: SyncLimits
    let logger: Logger
    /// How often to look for new local writes and for peers added or removed.
    let pollSeconds: Double

    public init(store: Store, interval: Double, client: CurlClient, limits: SyncLimits = SyncLimits(), logger: Logger, pollSeconds: Double = 1) {
        self.store = store
        self.interval = interval
        self.client = client
        self.limits = limits
        self.logger = logger
        self.pollSeconds = pollSeconds
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            // One loop per remembered peer; peers added or removed while serving are picked up.
            var running: [String: Task<Void, Never>] = [:]
            while !Task.isCancelled {
                let urls = Set((try? store.peers().map(\.url)) ?? [])
                for url in urls where running[url] == nil {
                    running[url] = Task { await loop(peer: url) }
                }
                for (url, task) in running where !urls.contains(url) {
                    task.cancel()
                    running[url] = nil
                }
                try? await Task.sleep(for: .seconds(pollSeconds))
            }
            for task in running.values { task.cancel() }
            for task in running.values { await task.value }
        }
    }

    /// Delay after `failures` consecutive failures: 1 s doubling up to the interval, ±25 % jitter.
    public static func backoff(failures: Int, interval: Double, random: Double) -> Double {
        let base = min(interval, pow(2, Double(max(0, failures - 1))))
        return base * (0.75 + 0.5 * random)
    }

    private func loop(peer url: String) async {
        let syncer = Syncer(
            store: store, transport: HTTPTransport(baseURL: url, client: client, signer: store.requestSigner), limits: limits, logger: logger)
        var failures = 0
        while !Task.isCancelled {
            let seqBefore = (try? store.ownSeq()) ?? 0
            do {
                _ = try await syncer.run(bookkeepingKey: url)
                failures = 0
            } catch {
                failures += 1
            }
            let wait = failures == 0 ? interval : Self.backoff(failures: failures, interval: interval, random: Double.random(in: 0...1))
            var waited = 0.0
            while waited < wait && !Task.isCancelled {
                let step = min(pollSeconds, wait - waited)
                try? await Task.sleep(for: .seconds(step))
                waited += step
                // A local write while the peer is reachable: sync now.
                if failures == 0, let seq = try? store.ownSeq(), seq != seqBefore { break }
            }
        }
    }
}
