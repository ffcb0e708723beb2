import CoreMetrics
import Foundation
import GRDB
import Prometheus
import SyncProtocol

/// What a serving node counts, for `GET /metrics` (Prometheus text format).
///
/// Events (sync rounds, applied and refused transactions, requests) are counted through
/// swift-metrics as they happen; states (open conflicts, held work, when each peer last synced and
/// each registered node was last heard from) are read from the store at each scrape, so they are
/// right after a restart. Each node has a registry of its own: nothing is global, and several nodes
/// in one process (the tests) count apart.
public final class NodeMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    /// The per-peer and per-node gauges last set, to drop those of peers and nodes since removed.
    private let scraped = Scraped()

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Requests take from under a millisecond (health, a small pull) and rounds from
        // milliseconds (nothing new) to minutes (a county back after a week).
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(2),
            .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300),
        ]
        self.factory = factory
        bytesInCounter = Counter(label: "syncnode_http_bytes_total", dimensions: [("direction", "in")], factory: factory)
        bytesOutCounter = Counter(label: "syncnode_http_bytes_total", dimensions: [("direction", "out")], factory: factory)
    }

    // MARK: Events

    /// A sync round this node started with `peer`, finished or failed.
    public func round(peer: String, summary: SyncSummary?, seconds: Double) {
        let peer = [("peer", Self.peerLabel(peer))]
        Counter(label: "syncnode_sync_rounds_total", dimensions: peer + [("outcome", summary == nil ? "failed" : "ok")], factory: factory)
            .increment()
        Timer(label: "syncnode_sync_round_duration_seconds", dimensions: peer, factory: factory).recordSeconds(seconds)
        guard let summary else { return }
        Counter(label: "syncnode_sync_bytes_total", dimensions: peer, factory: factory).increment(by: summary.wireBytes)
        Counter(label: "syncnode_transactions_sent_total", dimensions: peer, factory: factory).increment(by: summary.sent)
        applied(summary.applied, via: "pull")
        refused(summary.refusedHere + summary.turnedAway, by: "this_node")
        refused(summary.refused, by: "peer")
    }

    /// Transactions applied here: `pull` from rounds this node started, `push` from callers.
    public func applied(_ count: Int, via: String) {
        Counter(label: "syncnode_transactions_applied_total", dimensions: [("via", via)], factory: factory).increment(by: count)
    }

    /// Transactions refused: by this node (policy, revoked or unknown signers, bad copies) or by a
    /// peer (this node's own work it would not take).
    public func refused(_ count: Int, by: String) {
        Counter(label: "syncnode_transactions_refused_total", dimensions: [("by", by)], factory: factory).increment(by: count)
    }

    /// One HTTP request answered. `route` is the matched route pattern (bounded), never the raw path.
    public func request(route: String, status: Int, seconds: Double, bytesIn: Int, bytesOut: Int) {
        // Every request passes here: the handles are made once per route and status, not per request.
        let (requests, duration) = handles.request(route: route, status: status) {
            (
                Counter(label: "syncnode_http_requests_total", dimensions: [("route", route), ("status", String(status))], factory: factory),
                Timer(label: "syncnode_http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
            )
        }
        requests.increment()
        duration.recordSeconds(seconds)
        if bytesIn > 0 { bytesInCounter.increment(by: bytesIn) }
        if bytesOut > 0 { bytesOutCounter.increment(by: bytesOut) }
    }

    private let handles = Handles()
    private let bytesInCounter: CoreMetrics.Counter
    private let bytesOutCounter: CoreMetrics.Counter

    /// The request metrics made so far, by route and status.
    private final class Handles: @unchecked Sendable {
        private let lock = NSLock()
        private var made: [String: (CoreMetrics.Counter, CoreMetrics.Timer)] = [:]

        func request(route: String, status: Int, make: () -> (CoreMetrics.Counter, CoreMetrics.Timer)) -> (CoreMetrics.Counter, CoreMetrics.Timer) {
            let key = "\(status) \(route)"
            return lock.withLock {
                if let found = made[key] { return found }
                let new = make()
                made[key] = new
                return new
            }
        }
    }

    // MARK: Scrape

    /// The metrics as Prometheus text, states read from `store` now; `contacts` are callers heard
    /// since the contact book was last saved (newer than what the store holds).
    public func exposition(store: Store, recentContacts: [NodeID: NodeContact] = [:]) throws(SyncNodeError) -> [UInt8] {
        let state = try store.metricState()
        Gauge(label: "syncnode_build_info", dimensions: Self.build, factory: factory).record(1)
        Gauge(label: "syncnode_conflicts_open", factory: factory).record(state.conflictedFields)
        Gauge(label: "syncnode_transactions_held", factory: factory).record(state.held)
        Gauge(label: "syncnode_transactions", factory: factory).record(state.transactions)
        Gauge(label: "syncnode_forked_nodes", factory: factory).record(try store.forks().count)
        let applies = store.applyThreads.withLock { $0 }
        Gauge(label: "syncnode_applies_since_start", dimensions: [("thread", "storage")], factory: factory).record(applies.blocking)
        Gauge(label: "syncnode_applies_since_start", dimensions: [("thread", "other")], factory: factory).record(applies.other)
        let files = try store.attachmentSummary()
        Gauge(label: "syncnode_attachments_held", factory: factory).record(files.held)
        Gauge(label: "syncnode_attachment_bytes", factory: factory).record(files.heldBytes)
        Gauge(label: "syncnode_attachments_missing", factory: factory).record(files.missing)
        if let mirror = try store.mirrorStatus() {
            Gauge(label: "syncnode_mirror_behind_transactions", factory: factory).record(
                max(0, state.transactions - Int64(clamping: mirror.mirrored)))
            Gauge(label: "syncnode_mirror_failing", factory: factory).record(mirror.error == nil ? 0 : 1)
            if let current = mirror.currentAt {
                Gauge(label: "syncnode_mirror_current_timestamp_seconds", factory: factory).record(Self.seconds(current))
            }
        }

        // Per peer and per registered node; those of peers forgotten and nodes dropped from the
        // registry since the last scrape are removed.
        var series: [String: Series] = [:]
        func set(_ name: String, _ labels: [(String, String)], _ value: Double) {
            series[name + "\u{0}" + labels.map(\.1).joined(separator: "\u{0}")] = Series(name: name, labels: labels)
            Gauge(label: name, dimensions: labels, factory: factory).record(value)
        }
        for peer in try store.peers() {
            let labels = [("peer", Self.peerLabel(peer.url))]
            set("syncnode_peer_unsent_transactions", labels, Double(try store.unsentCount(to: peer)))
            if let success = peer.lastSuccess { set("syncnode_peer_last_success_timestamp_seconds", labels, Self.seconds(success)) }
        }
        for var node in try store.nodeHealth() {
            if let recent = recentContacts[node.entry.node], recent.heard >= node.contact?.heard ?? 0 { node.contact = recent.over(node.contact) }
            let labels = [("node", node.entry.node.hex), ("label", node.entry.label), ("site", node.entry.site)]
            if let heard = node.contact?.heard { set("syncnode_node_last_heard_timestamp_seconds", labels, Self.seconds(heard)) }
            if let unsent = node.notYetHere { set("syncnode_node_unsent_transactions", labels, Double(unsent)) }
        }
        for gone in scraped.replace(with: series) {
            Gauge(label: gone.name, dimensions: gone.labels, factory: factory).destroy()
        }
        return Self.withHelp(registry.emitToBuffer())
    }

    /// What each family measures, for the `# HELP` line Prometheus shows beside it.
    static let help: [String: String] = [
        "syncnode_build_info": "The node's version, protocol and storage schema (always 1).",
        "syncnode_conflicts_open": "Fields with concurrent values not yet resolved.",
        "syncnode_transactions_held": "Transactions waiting for HQ's approval of their node.",
        "syncnode_transactions": "Transactions stored in this node's log.",
        "syncnode_forked_nodes": "Nodes seen signing two histories.",
        "syncnode_applies_since_start":
            "Applies of received batches since the node started, by the threads they ran on: storage (the node's own) or other (a caller's, such as Swift's shared pool, which they must not hold).",
        "syncnode_peer_unsent_transactions": "Transactions a remembered peer has not yet received from this node.",
        "syncnode_peer_last_success_timestamp_seconds": "When a sync round with the peer last succeeded (Unix time).",
        "syncnode_node_last_heard_timestamp_seconds": "When the registered node last called this one (Unix time).",
        "syncnode_node_unsent_transactions": "Transactions of the registered node this node still lacks, as of its last call.",
        "syncnode_mirror_behind_transactions": "Transactions this node holds that its PostgreSQL mirror does not yet.",
        "syncnode_attachments_held": "Attached files (photos, PDFs) held here, checked against their SHA-256.",
        "syncnode_attachment_bytes": "Bytes of the attached files held here.",
        "syncnode_attachments_missing": "Attached files named by records here that have not arrived yet (they follow the records at a sync).",
        "syncnode_mirror_failing": "Whether the last pass of the PostgreSQL mirror failed (1) or succeeded (0).",
        "syncnode_mirror_current_timestamp_seconds": "When the PostgreSQL mirror last held everything this node held (Unix time).",
        "syncnode_http_bytes_total": "HTTP body bytes received and sent.",
        "syncnode_http_requests_total": "HTTP requests answered, by route and status.",
        "syncnode_http_request_duration_seconds": "Time to answer an HTTP request, by route.",
        "syncnode_sync_rounds_total": "Sync rounds this node started, by peer and outcome.",
        "syncnode_sync_round_duration_seconds": "Time of a sync round this node started, by peer.",
        "syncnode_sync_bytes_total": "Bytes on the wire in sync rounds this node started, by peer.",
        "syncnode_transactions_sent_total": "Transactions this node pushed, by peer.",
        "syncnode_transactions_applied_total": "Transactions applied here, by how they came (pull or push).",
        "syncnode_transactions_refused_total": "Transactions refused, by this node or by a peer.",
    ]

    /// The exposition with a `# HELP` line before each family's `# TYPE` line.
    static func withHelp(_ text: [UInt8]) -> [UInt8] {
        var out: [String] = []
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first, let help = help[String(name)] {
                out.append("# HELP \(name) \(help)")
            }
            out.append(String(line))
        }
        return Array(out.joined(separator: "\n").utf8)
    }

    private static let build = [
        ("version", SyncNodeVersion.text), ("protocol", String(WireCodec.protocolVersion)), ("schema", String(Store.schemaVersion)),
    ]

    private static func seconds(_ millis: UInt64) -> Double { Double(millis) / 1000 }

    /// A peer's URL without a user or password it may carry: metrics are read by more people than
    /// the node's configuration.
    static func peerLabel(_ url: String) -> String {
        guard var parts = URLComponents(string: url), parts.user != nil || parts.password != nil else { return url }
        parts.user = nil
        parts.password = nil
        return parts.string ?? url
    }

    /// One labelled gauge.
    struct Series: Sendable {
        var name: String
        var labels: [(String, String)]
    }

    /// The labelled gauges set at the last scrape.
    private final class Scraped: @unchecked Sendable {
        private let lock = NSLock()
        private var last: [String: Series] = [:]

        /// Keeps `now`; returns those of the last scrape missing from it.
        func replace(with now: [String: Series]) -> [Series] {
            lock.withLock {
                defer { last = now }
                return last.filter { now[$0.key] == nil }.map(\.value)
            }
        }
    }
}

/// The version `syncnode --version` prints and `/metrics` reports.
public enum SyncNodeVersion {
    public static let text = "0.14"
}

/// The counts `/metrics` reads at each scrape.
struct MetricState {
    var conflictedFields: Int64
    var held: Int64
    var transactions: Int64
}

extension Store {
    /// Open conflicts (fields whose heads disagree; the partial index keeps this cheap), held work,
    /// and the transactions in the log (the sum of the vector's entries).
    func metricState() throws(SyncNodeError) -> MetricState {
        let total = try vector().total
        return try read { db in
            MetricState(
                conflictedFields: try Int64.fetchOne(db, sql: "SELECT coalesce(sum(conflicts), 0) FROM record WHERE conflicts > 0") ?? 0,
                held: try HeldRow.count(db), transactions: Int64(clamping: total))
        }
    }
}
