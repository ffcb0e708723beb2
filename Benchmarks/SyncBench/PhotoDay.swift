import Foundation
import SyncNode
import SyncProtocol

/// P5p: a county's day with photos over P5's link (64 kbit/s, 10% loss each way): the day's
/// records reach HQ before the first photo; every photo is at HQ by the end, over as many rounds
/// as it takes (each gives files two minutes); the link is cut while a photo is half sent, and no
/// byte HQ had acknowledged is sent again. Needs the `syncnode` binary (its `sync --json` says
/// what each round moved).
enum PhotoDay {
    static func measure(link: LossyLink, scratch: Scratch, transactions: Int, photos: Int, photoBytes: Int) throws -> [Figure] {
        let countyDir = scratch.path("county-photos")
        let county = try NetLink.countyDay(in: countyDir, transactions: transactions)
        var rng = SplitMix64(seed: 5)
        var shas: [String] = []
        for p in 0..<photos {
            var bytes: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0]
            while bytes.count < photoBytes { bytes += withUnsafeBytes(of: rng.next()) { Array($0) } }
            let file = scratch.path("photo-\(p).jpg")
            try Data(bytes.prefix(photoBytes)).write(to: file)
            shas.append(
                try county.attach(collection: "projects", recordID: "day-\(p % max(1, transactions * 2))", file: file, caption: "photo \(p)").0.sha256
            )
        }
        let total = transactions + photos
        try county.close()

        let runner = NetLink.Runner(link: link, scratch: scratch, county: countyDir)
        guard runner.cli != nil else {
            Notes.add("P5p skipped: it needs the syncnode binary next to syncnode-bench (`swift build -c release --product syncnode`).")
            return []
        }
        let server = try runner.startHQ("hq-photos")
        defer { server.stop() }
        let watch = Watch(hq: server.directory, shas: shas, transactions: total)
        let started = Date()
        var rounds = 0
        var acknowledged = 0
        var cut = false
        var notes: [String] = []
        while watch.photosHeld() < photos && rounds < 60 {
            rounds += 1
            let child = try runner.syncChild(server: server, batch: 500, timeout: 600, stall: 20)
            if !cut {
                // Cut the link once photos are moving (one half received at HQ, or the first in
                // whole: a photo of one part is in flight then), then bring it back.
                while child.isRunning && !watch.partialPresent() && watch.photosHeld() == 0 { usleep(50_000) }
                if child.isRunning {
                    // Longer than the client's 20 s stall limit: the transfer stops, and the next
                    // round starts from what HQ received.
                    try link.cut()
                    cut = true
                    usleep(25_000_000)
                    try link.restore()
                    notes.append(
                        "round \(rounds): link cut for 25 s with photos moving (HQ held \(watch.photosHeld()), one half received: \(watch.partialPresent()))"
                    )
                }
            }
            child.wait(timeout: 900)
            let object = ((try? JSONSerialization.jsonObject(with: Data(child.stdout.utf8))) as? [[String: Any]])?.first
            let files = object?["files"] as? [String: Any]
            acknowledged += files?["bytes"] as? Int ?? 0
            notes.append(
                "round \(rounds): \(object?["ok"] as? Bool == true ? "ok" : "failed (\(object?["error"] as? String ?? "no result"))"), files \(files.map { "sent \($0["sent"] ?? 0), \($0["bytes"] ?? 0) bytes\($0["stopped"].map { ", stopped: \($0)" } ?? "")" } ?? "none")"
            )
        }
        let seconds = Date().timeIntervalSince(started)
        let (recordsAt, firstPhotoAt) = watch.times()
        watch.stop()
        let photoTotal = photos * photoBytes
        let resent = acknowledged - photoTotal
        let allHeld = watch.photosHeld() == photos
        Notes.add(
            "P5p: \(photos) photos of \(photoBytes / 1000) KB (\(photoTotal) bytes) and \(transactions) transactions over 64 kbit/s with 10% loss: \(rounds) rounds, \(format(seconds)) s; records complete at HQ after \(recordsAt.map(format) ?? "never") s, the first photo after \(firstPhotoAt.map(format) ?? "never") s; photo bytes acknowledged \(acknowledged). "
                + notes.joined(separator: "; "))
        let ideal = Double(photoTotal) * 8 / 64000
        return [
            Figure(
                id: "P5p", name: "a county's day with \(photos) photos of \(photoBytes / 1000) KB over P5's link: every photo at HQ", value: seconds,
                unit: "s", baseline: ideal, baselineName: "the photos' bytes at exactly 64 kbit/s without loss", goal: "every photo by the end",
                met: allHeld),
            Figure(
                id: "P5p", name: "the day's records complete at HQ before its first photo (seconds between)",
                value: (firstPhotoAt ?? 0) - (recordsAt ?? 0), unit: "s", goal: "> 0",
                met: recordsAt != nil && firstPhotoAt.map { $0 > recordsAt! } ?? false),
            Figure(
                id: "P5p", name: "link cut with photos moving, then rounds until all are in: photo bytes HQ acknowledged twice",
                // Fewer acknowledged than sent is an answer lost in the cut (HQ kept the part and
                // did not ask for it again); more would be bytes sent twice.
                value: Double(max(0, resent)), unit: "bytes", goal: "0", met: cut && resent <= 0 && allHeld),
        ]
    }

    /// Watches HQ's directory from outside while it serves: when its log holds the day, when the
    /// first photo is in place, and whether a photo is half received.
    final class Watch: @unchecked Sendable {
        let hq: URL
        let shas: [String]
        let transactions: Int
        private let lock = NSLock()
        private var recordsAt: Double?
        private var firstPhotoAt: Double?
        private var running = true
        private let started = Date()

        init(hq: URL, shas: [String], transactions: Int) {
            self.hq = hq
            self.shas = shas
            self.transactions = transactions
            Thread.detachNewThread { [self] in
                while lock.withLock({ running }) {
                    let now = Date().timeIntervalSince(started)
                    let held = (try? NetLink.held(hq.appendingPathComponent(Store.fileName))) ?? 0
                    let photos = photosHeld()
                    lock.withLock {
                        if recordsAt == nil && held >= transactions { recordsAt = now }
                        if firstPhotoAt == nil && photos > 0 { firstPhotoAt = now }
                    }
                    usleep(100_000)
                }
            }
        }

        func photosHeld() -> Int {
            shas.filter { FileManager.default.fileExists(atPath: hq.appendingPathComponent("attachments/\($0.prefix(2))/\($0)").path) }.count
        }

        func partialPresent() -> Bool {
            let folder = hq.appendingPathComponent("attachments/partial")
            return ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).contains { name in
                Attachment.isSHA256(name)
                    && ((try? FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(name).path)[.size] as? NSNumber)?.intValue
                        ?? 0) > 0
            }
        }

        func times() -> (Double?, Double?) { lock.withLock { (recordsAt, firstPhotoAt) } }

        func stop() { lock.withLock { running = false } }
    }
}
