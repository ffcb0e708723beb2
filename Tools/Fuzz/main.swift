import ArgumentParser
import Crypto
import Foundation
import SyncNode
import SyncProtocol

#if canImport(Glibc)
    import Glibc
#endif

// syncnode-fuzz: a seeded, structure-aware mutation fuzzer for everything that decodes bytes
// from outside: the wire decoder, batch framing, transaction frames, bundle files, and the push
// and pull endpoints of the sync service (against a real store). It runs in process, checks that
// every input is either accepted or refused with the decoder's own error type and a message
// (never a trap, never an "internal" 500), and on a crash writes the input to --out before dying.
//
//   swift build --product syncnode-fuzz && .build/debug/syncnode-fuzz --iterations 200000 --seed 1
//   .build/debug/syncnode-fuzz --replay Tests/SyncNodeTests/Fixtures/fuzz     # re-run saved inputs
//   .build/debug/syncnode-fuzz --write-seeds DIR                              # seed corpus for libFuzzer

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("syncnode-fuzz: \(message)\n".utf8))
    exit(64)
}

func say(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }

struct FuzzOptions: ParsableArguments {
    @Option(help: "Mutated inputs per target.")
    var iterations = 100_000
    @Option(help: "Seed of the mutations.")
    var seed: UInt64 = 1
    @Option(help: "Fuzz only this target.")
    var target: String?
    @Option(help: "Where crash inputs are written (default .build/fuzz-crashes, kept out of git).")
    var out: String?
    @Option(help: "Re-run the saved inputs in this directory instead of fuzzing.")
    var replay: String?
    @Option(help: "Write a seed corpus for libFuzzer to this directory.")
    var writeSeeds: String?
    @Option(help: "Stop after this many seconds.")
    var maxSeconds = 3600.0
}

let options = FuzzOptions.parseOrExit()
let iterations = options.iterations
let seed = options.seed
let only = options.target
let outDirectory = options.out ?? FileManager.default.currentDirectoryPath + "/.build/fuzz-crashes"
let replayDirectory = options.replay
let seedsDirectory = options.writeSeeds
let maxSeconds = options.maxSeconds
try? FileManager.default.createDirectory(atPath: outDirectory, withIntermediateDirectories: true)

// MARK: crash capture

/// The input being executed, copied to a fixed buffer so a signal handler can save it.
enum Current {
    static let capacity = 8 << 20
    nonisolated(unsafe) static let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
    nonisolated(unsafe) static var length = 0
    nonisolated(unsafe) static var path: UnsafeMutablePointer<CChar> = strdup("crash.bin")!

    static func set(_ bytes: [UInt8]) {
        length = min(bytes.count, capacity)
        bytes.withUnsafeBufferPointer { src in buffer.update(from: src.baseAddress!, count: length) }
    }
}

@MainActor func installCrashHandlers(target: String) {
    free(Current.path)
    Current.path = strdup(outDirectory + "/crash-\(target)-seed\(seed).bin")!
    for sig in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE] {
        signal(sig) { s in
            let fd = open(Current.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            if fd >= 0 {
                _ = write(fd, Current.buffer, Current.length)
                close(fd)
            }
            let message = "syncnode-fuzz: crashed (signal); input saved\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
            _exit(128 + s)
        }
    }
}

// MARK: seeds

/// A node with varied transactions (text in Chinese, numbers, reals, nulls, deletes, ledger
/// entries, a reversal, a resolved conflict) to draw valid inputs from.
struct Seeds {
    var transactions: [[UInt8]] = []
    var frames: [[UInt8]] = []
    var batches: [[UInt8]] = []
    var bundles: [[UInt8]] = []
    var bundleBodies: [[UInt8]] = []
    var pulls: [[UInt8]] = []
    var messages: [[UInt8]] = []
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("syncnode-fuzz-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        let a = try Store.create(in: directory.appendingPathComponent("a"), site: "lintan", label: "lintan-1", role: .hq, trust: .open)
        let b = try Store.create(in: directory.appendingPathComponent("b"), site: "hq", label: "hq-1", role: .hq, trust: .open)
        defer {
            try? a.close()
            try? b.close()
        }
        try a.commit([.put(collection: "projects", recordID: "lt-school", fields: [.init("name", .text("东丽小学")), .init("progress_pct", .int(15))])])
        try a.commit([.put(collection: "projects", recordID: "lt-road", fields: [.init("length_km", .real(12.5)), .init("note", .null)])])
        try a.commit([.append(ledger: "trainings", entryID: nil, fields: [.init("county", .text("lintan")), .init("attendees", .int(40))])])
        let entry = try a.commit([.append(ledger: "disbursements", entryID: "e-1", fields: [.init("amount_fen", .int(5_000_000))])])
        _ = entry
        try a.commit([
            .append(ledger: "disbursements", entryID: nil, fields: [.init("amount_fen", .int(-5_000_000)), .init("_reverses", .text("e-1"))])
        ])
        try a.commit([.delete(collection: "projects", recordID: "lt-road")])
        try b.commit([.put(collection: "projects", recordID: "lt-school", fields: [.init("progress_pct", .int(20))])])
        _ = try b.apply(try a.transactions(missingFrom: try b.vector()).transactions)
        try b.commit([.resolve(collection: "projects", recordID: "lt-school", field: "progress_pct", value: .int(25))])
        let all = try b.transactions(missingFrom: VersionVector()).transactions
        // Bodies as this version writes them (binary) and as version 1 wrote them (JSON), which
        // logs made before the upgrade still hold and relay.
        let json = all.map { ReceivedTransaction(transaction: $0.transaction, body: WireCodec.encodeJSON($0.transaction), signature: $0.signature) }
        transactions = all.map(\.body) + json.map(\.body)
        frames = all.map(\.frame)
        var refused = all[0]
        refused.refusal = Refusal(origin: refused.transaction.origin, seq: refused.transaction.seq, reason: "refused: test", refusedBy: "hq-1")
        frames.append(refused.frame)
        let me = PeerIdentity(node: b.info.nodeID, site: "hq", label: "hq-1")
        for count in [0, 1, 3, all.count] {
            let header = BatchHeader(from: me, count: count, more: false, clock: 1_700_000_000_000)
            batches.append(BatchCodec.encode(header: try WireCodec.encodeMessage(header), frames: all.prefix(count).map(\.frame)))
        }
        for since in [VersionVector(), try a.vector()] {
            let file = directory.appendingPathComponent("x.bundle")
            _ = try b.exportBundle(to: file, since: since, sealedFor: nil)
            let bytes = [UInt8](try Data(contentsOf: file))
            bundles.append(bytes)
        }
        let header = BatchHeader(from: me, count: json.count, more: false, clock: 1_700_000_000_000)
        batches.append(BatchCodec.encode(header: try WireCodec.encodeMessage(header), frames: json.map(\.frame)))
        bundleBodies.append(Array(BatchCodec.encode(header: [], frames: all.map(\.frame)).dropFirst()))
        pulls.append(
            try WireCodec.encodeMessage(PullRequest(from: me, vector: try a.vector(), maxTransactions: 10, maxBytes: 100_000)))
        pulls.append(try WireCodec.encodeMessage(PullRequest(from: me, vector: VersionVector(), maxTransactions: 1, maxBytes: 1)))
        messages.append(try WireCodec.encodeMessage(try b.vector()))
        messages.append(
            try WireCodec.encodeMessage(
                StatusMessage(
                    identity: me, protocolVersion: WireCodec.protocolVersion, schemaVersion: 1, clock: 1_700_000_000_000, vector: try b.vector())))
        messages.append(try WireCodec.encodeMessage(PushResponse(applied: 1, duplicates: 2, vector: try b.vector())))
    }
}

// MARK: mutation

struct Mutator {
    var random: SplitMix64

    init(state: UInt64) { random = SplitMix64(seed: state) }

    mutating func next() -> UInt64 { random.next() }

    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }

    static let interestingBytes: [UInt8] = Array("\"{}[],:\n0123456789-e.\\ ".utf8) + [0, 0x7F, 0x80, 0xC3, 0xE4, 0xFF]
    static let interestingNumbers = [
        "0", "-1", "1", "65", "4294967296", "18446744073709551615", "18446744073709551616", "9223372036854775807", "-9223372036854775808",
        "99999999999999999999999", "1e309", "-0", "1.5", "NaN", "null", "true", "\"\"",
    ]
    static let interestingStrings = [
        "\"\"", "\"_deleted\"", "\"\\u0000\"", "\"\\ud800\"", "\"" + String(repeating: "长", count: 30000) + "\"", "[]", "{}", "null",
        "\"ffffffffffffffffffffffffffffffff\"", "\"0000000000000000\"", "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",
    ]

    /// One to four random edits: bit flips, interesting bytes, cuts, inserts, duplicated ranges,
    /// splices with another input, number and string token swaps, binary varint edits, length-line
    /// edits.
    mutating func mutate(_ input: [UInt8], other: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0...below(4) {
            switch below(10) {
            case 0 where !bytes.isEmpty:
                bytes[below(bytes.count)] ^= UInt8(1 << below(8))
            case 1 where !bytes.isEmpty:
                bytes[below(bytes.count)] = Self.interestingBytes[below(Self.interestingBytes.count)]
            case 2 where !bytes.isEmpty:
                let start = below(bytes.count)
                bytes.removeSubrange(start..<min(bytes.count, start + 1 + below(16)))
            case 3:
                let at = below(bytes.count + 1)
                bytes.insert(contentsOf: (0..<(1 + below(8))).map { _ in UInt8(truncatingIfNeeded: next()) }, at: at)
            case 4 where !bytes.isEmpty:
                bytes = Array(bytes.prefix(below(bytes.count)))
            case 5 where !bytes.isEmpty:
                let start = below(bytes.count)
                let piece = bytes[start..<min(bytes.count, start + 1 + below(64))]
                bytes.insert(contentsOf: piece, at: below(bytes.count + 1))
            case 6:
                bytes = Array(bytes.prefix(below(bytes.count + 1))) + Array(other.suffix(below(other.count + 1)))
            case 7:
                bytes = replaceToken(bytes, isNumber: true)
            case 8:
                bytes = replaceToken(bytes, isNumber: false)
            case 9 where below(2) == 0:
                // Binary bodies: an overlong, huge or unterminated varint, or a counted item cut short.
                let varints: [[UInt8]] = [[0x80, 0x00], [0xFF, 0x7F], [0x81, 0x01], Array(repeating: 0xFF, count: 9) + [0x01], [0xFF], [0x80]]
                let at = below(bytes.count + 1)
                let piece = varints[below(varints.count)]
                if at < bytes.count, below(2) == 0 {
                    bytes.replaceSubrange(at..<(at + 1), with: piece)
                } else {
                    bytes.insert(contentsOf: piece, at: at)
                }
            default:
                bytes = editLengthLine(bytes)
            }
        }
        return bytes
    }

    /// Replaces a run of digits (or a quoted string) with an interesting one.
    mutating func replaceToken(_ bytes: [UInt8], isNumber: Bool) -> [UInt8] {
        var spans: [Range<Int>] = []
        var i = 0
        while i < bytes.count && spans.count < 64 {
            if isNumber, bytes[i] >= 0x30 && bytes[i] <= 0x39 {
                var j = i
                while j < bytes.count && bytes[j] >= 0x30 && bytes[j] <= 0x39 { j += 1 }
                spans.append(i..<j)
                i = j
            } else if !isNumber, bytes[i] == 0x22 {
                var j = i + 1
                while j < bytes.count && bytes[j] != 0x22 { j += bytes[j] == 0x5C ? 2 : 1 }
                if j < bytes.count { spans.append(i..<(j + 1)) }
                i = j + 1
            } else {
                i += 1
            }
        }
        guard !spans.isEmpty else { return bytes }
        let span = spans[below(spans.count)]
        let pool = isNumber ? Self.interestingNumbers : Self.interestingStrings
        var out = bytes
        out.replaceSubrange(span, with: Array(pool[below(pool.count)].utf8))
        return out
    }

    /// Changes the decimal length line of a frame (`<n>\n`) to a nearby or absurd value.
    mutating func editLengthLine(_ bytes: [UInt8]) -> [UInt8] {
        var starts: [Range<Int>] = []
        var lineStart = 0
        for (i, b) in bytes.enumerated() where b == 0x0A {
            if i > lineStart, i - lineStart <= 12, bytes[lineStart..<i].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) { starts.append(lineStart..<i) }
            lineStart = i + 1
        }
        guard !starts.isEmpty else { return bytes }
        let span = starts[below(starts.count)]
        let old = Int(String(decoding: bytes[span], as: UTF8.self)) ?? 0
        let choices = [old - 1, old + 1, 0, old * 2, 999_999_999_999, old + 64]
        var out = bytes
        out.replaceSubrange(span, with: Array(String(max(0, choices[below(choices.count)])).utf8))
        return out
    }
}

/// Re-wraps a (mutated) plain body and header as a bundle with a valid checksum and gzip, so the
/// mutation reaches the frame and transaction decoders behind the checksum.
func wrapBundle(header: [UInt8], body: [UInt8]) -> [UInt8] {
    let compressed = Gzip.compress(body)
    var hasher = SHA256()
    hasher.update(data: header)
    hasher.update(data: [0x0A])
    hasher.update(data: compressed)
    let sum = Hex.string(hasher.finalize())
    return Array("SYNCNODE-BUNDLE 1\n".utf8) + header + [0x0A] + Array("sha256 \(sum)\n".utf8) + compressed
}

// MARK: targets

/// A decoding entry point under test. `run` returns the outcome class; it must not trap.
struct Target {
    var name: String
    var seeds: @MainActor () -> [[UInt8]]
    var run: @MainActor ([UInt8]) -> String
}

let seeds = try Seeds()
let receiverDirectory = seeds.directory.appendingPathComponent("receiver")
let receiver = try Store.create(in: receiverDirectory, site: "gangu", label: "gangu-1", role: .hq, trust: .open)
let service = SyncService(store: receiver)
var problems: [String] = []

/// An HQ that checks everything (its own trust anchor, a registry) and an approved Lintan whose
/// key signs each fuzzed push, so that the bodies reach the authorised apply path; the seeds are
/// batches of Lintan's own signed work.
struct GuardedHQ {
    let hq: Store
    let sender: Store
    var service: SyncService
    var calls = 0
    var seeds: [[UInt8]] = []
    var watch = WriteWatch()

    init(in directory: URL) throws {
        hq = try Store.create(in: directory.appendingPathComponent("guarded-hq"), site: "hq", label: "dongli-hq", role: .hq, trust: .hq)
        sender = try Store.create(
            in: directory.appendingPathComponent("signed-lintan"), site: "lintan", label: "lintan-1", role: .county,
            trust: .anchor(hq.info.publicKey))
        try hq.commit([.approve(node: sender.info.nodeID, key: sender.info.publicKey, site: "lintan", role: .county, label: "lintan-1")])
        service = SyncService(store: hq)
        try sender.commit([
            .put(collection: "projects", recordID: "lt-school", fields: [.init("name", .text("东丽小学")), .init("progress_pct", .int(15))])
        ])
        try sender.commit([.append(ledger: "trainings", entryID: nil, fields: [.init("county", .text("lintan")), .init("attendees", .int(40))])])
        try sender.commit([.delete(collection: "projects", recordID: "lt-school")])
        let all = try sender.transactions(missingFrom: VersionVector()).transactions
        let me = PeerIdentity(node: sender.info.nodeID, site: "lintan", label: "lintan-1")
        for count in [0, 1, all.count] {
            let header = BatchHeader(from: me, count: count, more: false, clock: UInt64(Date().timeIntervalSince1970 * 1000))
            seeds.append(BatchCodec.encode(header: try WireCodec.encodeMessage(header), frames: all.prefix(count).map(\.frame)))
        }
    }

    /// Pushes `body` signed by Lintan; a refusal must leave HQ's database as it was.
    @MainActor mutating func push(_ body: [UInt8]) -> String {
        calls += 1
        // A fresh service (replay cache) now and then: Lintan's nonces stay under its per-node bound.
        if calls % 5_000 == 0 { service = SyncService(store: hq) }
        let headers = sender.requestSigner.headers(method: "POST", path: "/v1/push", body: body)
        let lowered = Dictionary(uniqueKeysWithValues: headers.map { ($0.key.lowercased(), $0.value) })
        let service = service
        let outcome = apiOutcome { () throws(APIError) in
            let caller = try service.authenticate(method: "POST", path: "/v1/push", body: body, headers: lowered)
            guard caller != nil else { throw APIError(status: 500, code: "internal", message: "the guarded HQ authenticated nobody") }
            return try service.push(body: body, caller: caller)
        }
        watch.check(outcome, "signed push") { try? hq.storedDigest() }
        return outcome
    }
}

var guarded = try GuardedHQ(in: seeds.directory)

/// Checks that refusals write nothing: the whole database's digest (`Store.storedDigest`) is
/// taken after every accepted input and compared after every fourth refusal (a digest costs
/// milliseconds); a refusal that wrote is still caught by the next comparison unless an accepted
/// input came between.
struct WriteWatch {
    var last: String?
    var refusals = 0

    @MainActor mutating func check(_ outcome: String, _ what: String, digest: () -> String?) {
        if outcome == "accepted" || last == nil {
            last = digest()
            return
        }
        refusals += 1
        guard refusals % 4 == 0 else { return }
        let now = digest()
        if now != last {
            problems.append("a refused \(what) (\(outcome)) wrote to the database")
            last = now
        }
    }
}

var openWatch = WriteWatch()

/// A push without a signature to a node in open mode: a refusal must write nothing there either.
@MainActor func openPush(_ body: [UInt8]) -> String {
    let outcome = apiOutcome { () throws(APIError) in try service.push(body: body) }
    openWatch.check(outcome, "push") { try? receiver.storedDigest() }
    return outcome
}

@MainActor func apiOutcome(_ body: () throws(APIError) -> [UInt8]) -> String {
    do {
        _ = try body()
        return "accepted"
    } catch {
        if error.status >= 500 || error.message.isEmpty {
            // Bad input must be answered as bad input, not as a server or storage failure.
            problems.append("\(error.status) answered: \(error)")
            let file = outDirectory + "/unclean-\(error.status)-\(problems.count).bin"
            try? Data(bytes: Current.buffer, count: Current.length).write(to: URL(fileURLWithPath: file))
        }
        return "\(error.status) \(error.code)"
    }
}

let bundleHeaderLine: [UInt8] = {
    let b = seeds.bundles[0]
    let lines = b.split(separator: 0x0A, maxSplits: 3, omittingEmptySubsequences: false)
    return Array(lines[1])
}()

let targets: [Target] = [
    Target(
        name: "wire", seeds: { seeds.transactions },
        run: { bytes in
            do {
                _ = try WireCodec.decode(bytes)
                return "accepted"
            } catch let error as WireError {
                if error.description.isEmpty { problems.append("empty wire error") }
                return "malformed"
            } catch {
                problems.append("wire decoder threw \(type(of: error))")
                return "other"
            }
        }),
    Target(
        name: "batch", seeds: { seeds.batches },
        run: { bytes in
            do {
                let (_, frames) = try BatchCodec.decode(bytes)
                for frame in frames { _ = try? ReceivedTransaction(frame: frame) }
                return "framed"
            } catch {
                return "malformed"
            }
        }),
    Target(
        name: "frame", seeds: { seeds.frames },
        run: { bytes in
            // The frame decoder is the wire's (SyncProtocol): it refuses with a typed WireError only.
            do {
                _ = try ReceivedTransaction(frame: bytes)
                return "accepted"
            } catch let error as WireError {
                return SyncNodeError(error).code.rawValue
            } catch {
                problems.append("frame decoder threw \(type(of: error))")
                return "other"
            }
        }),
    Target(
        name: "bundle", seeds: { seeds.bundles },
        run: { bytes in
            do {
                _ = try BundleFile(decoding: bytes)
                return "accepted"
            } catch let error as SyncNodeError {
                if error.code != .corruptBundle { problems.append("bundle refused with \(error.code): \(error.message)") }
                return "corrupt: "
                    + String(error.message.dropFirst("the bundle is not usable: ".count).prefix { $0 != "(" && $0 != ":" && $0 != "'" })
            } catch {
                problems.append("bundle reader threw \(type(of: error))")
                return "other"
            }
        }),
    Target(
        name: "bundle-body", seeds: { seeds.bundleBodies },
        run: { body in
            do {
                _ = try BundleFile(decoding: wrapBundle(header: bundleHeaderLine, body: body))
                return "accepted"
            } catch let error as SyncNodeError {
                if error.code != .corruptBundle { problems.append("bundle refused with \(error.code): \(error.message)") }
                return "corrupt"
            } catch {
                problems.append("bundle reader threw \(type(of: error))")
                return "other"
            }
        }),
    Target(name: "push", seeds: { seeds.batches }, run: { bytes in openPush(bytes) }),
    Target(name: "signed-push", seeds: { guarded.seeds }, run: { bytes in guarded.push(bytes) }),
    Target(name: "pull", seeds: { seeds.pulls }, run: { bytes in apiOutcome { () throws(APIError) in try service.pull(body: bytes) } }),
    Target(
        name: "messages", seeds: { seeds.messages },
        run: { bytes in
            let ok = [
                (try? WireCodec.decodeMessage(VersionVector.self, from: bytes)) != nil,
                (try? WireCodec.decodeMessage(StatusMessage.self, from: bytes)) != nil,
                (try? WireCodec.decodeMessage(PushResponse.self, from: bytes)) != nil,
                (try? WireCodec.decodeMessage(BatchHeader.self, from: bytes)) != nil,
            ]
            return ok.contains(true) ? "accepted" : "malformed"
        }),
]

// MARK: modes

if let seedsDirectory {
    try FileManager.default.createDirectory(atPath: seedsDirectory, withIntermediateDirectories: true)
    for target in targets {
        for (i, s) in target.seeds().enumerated() {
            try Data(s).write(to: URL(fileURLWithPath: "\(seedsDirectory)/\(target.name)-\(i).seed"))
        }
    }
    say("wrote seed inputs to \(seedsDirectory)")
    exit(0)
}

if let replayDirectory {
    // Every saved input through every target: none may crash.
    let files = try FileManager.default.contentsOfDirectory(atPath: replayDirectory).filter { !$0.hasPrefix(".") }.sorted()
    installCrashHandlers(target: "replay")
    for file in files {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: replayDirectory + "/" + file)))
        Current.set(bytes)
        let outcomes = targets.map { "\($0.name)=\($0.run(bytes))" }
        say("\(file): " + outcomes.joined(separator: " "))
    }
    say("replayed \(files.count) inputs through \(targets.count) targets: no crash")
    exit(problems.isEmpty ? 0 : 1)
}

// The write watch is not vacuous: a write between two refusals is caught.
do {
    var probe = WriteWatch()
    probe.check("accepted", "probe") { try? receiver.storedDigest() }
    try receiver.commit([.put(collection: "projects", recordID: "fuzz-probe", fields: [.init("name", .text("probe"))])])
    for _ in 0..<4 { probe.check("400 malformed", "probe") { try? receiver.storedDigest() } }
    guard problems.popLast()?.contains("refused probe") == true else { fail("the write watch missed a write between two refusals") }
}

let started = Date()
var executions = 0
var totalOutcomes: [String: [String: Int]] = [:]
let selected = targets.filter { only == nil || $0.name == only }
guard !selected.isEmpty else { fail("no target named \(only ?? ""); targets: \(targets.map(\.name).joined(separator: ", "))") }
let perTarget = max(1, iterations / selected.count)
for (t, target) in selected.enumerated() {
    installCrashHandlers(target: target.name)
    var mutator = Mutator(state: seed &* 1_000_003 &+ UInt64(t))
    let pool = target.seeds()
    var outcomes: [String: Int] = [:]
    for i in 0..<perTarget {
        if Date().timeIntervalSince(started) > maxSeconds { break }
        let base = pool[mutator.below(pool.count)]
        let input = i < pool.count ? pool[i] : mutator.mutate(base, other: pool[mutator.below(pool.count)])
        Current.set(input)
        outcomes[target.run(input), default: 0] += 1
        executions += 1
    }
    totalOutcomes[target.name] = outcomes
    let top = outcomes.sorted { $0.value > $1.value }.prefix(6).map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    say("\(target.name): \(outcomes.values.reduce(0, +)) executions; \(top)")
}
try? receiver.close()
try? guarded.hq.close()
try? guarded.sender.close()
try? FileManager.default.removeItem(at: seeds.directory)
for p in Set(problems).sorted().prefix(20) { say("problem: \(p)") }
say(
    String(
        format: "fuzz: %d executions in %.1f s, 0 crashes, %d unclean errors (seed %llu)", executions, Date().timeIntervalSince(started),
        problems.count, seed))
exit(problems.isEmpty ? 0 : 1)
