import Foundation
import SyncNode
import SyncProtocol

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct TempDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("syncnode-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> URL { url.appendingPathComponent(name) }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// A store in a temporary directory with a manual clock.
struct TestNode {
    let directory: TempDirectory
    let store: Store
    let clock: ManualClock

    init(
        site: String = "lintan", label: String? = nil, millis: UInt64 = 1_700_000_000_000, limits: StoreLimits = StoreLimits(), role: Role = .hq,
        trust: TrustSetup = .open
    ) throws {
        directory = try TempDirectory()
        clock = ManualClock(millis: millis)
        store = try Store.create(in: directory.path("node"), site: site, label: label, role: role, trust: trust, clock: clock, limits: limits)
    }

    func remove() {
        try? store.close()
        directory.remove()
    }
}
