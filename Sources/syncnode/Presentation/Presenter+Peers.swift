import Foundation
import SyncNode
import SyncProtocol

extension Presenter {
    public static func peerObject(_ p: PeerRecord, unsent: UInt64) -> [String: Any] {
        var object: [String: Any] = ["url": p.url, "unsent": unsent, "sent": p.sent, "received": p.received]
        if let label = p.label { object["label"] = label }
        if let node = p.node { object["node"] = node.hex }
        if let t = p.lastSuccess { object["lastSuccess"] = isoTime(t) }
        if let t = p.lastAttempt { object["lastAttempt"] = isoTime(t) }
        if let e = p.lastError { object["lastError"] = e }
        if let s = p.skewMillis { object["skewMillis"] = s }
        return object
    }

    public static func peersTable(_ rows: [(PeerRecord, UInt64)]) -> String {
        var table = TextTable(["peer", "label", "last success (\(localZone))", "not yet sent", "clock skew", "last error"])
        for (p, unsent) in rows {
            let failedLast = p.lastError != nil
            table.add([
                p.url, p.label ?? "", p.lastSuccess.map { localTime($0) } ?? "never", "\(unsent) transactions",
                p.skewMillis.map { "\($0) ms" } ?? "", failedLast ? (p.lastError ?? "") : "",
            ])
        }
        return table.render()
    }
}
