import Foundation
import NIOCore

/// Password guesses, counted per account name from every address, and far more loosely per address.
///
/// Per account: the first `freeFailures` failed checks of a name cost only the answer's second;
/// after them, every further attempt for that name waits, from the end of its last failed check, a
/// delay that doubles from `firstDelay` up to `maxDelay`, whichever address it comes from. A success
/// clears the name. A name no user has is counted exactly as one a user has (nothing tells them
/// apart), and one person's wrong passwords never hold up another name from the same machine.
///
/// Per address: an address whose failed checks within `sprayWindow` were for `sprayNames` different
/// names may try only those names until the oldest leaves the window. This slows one password tried
/// against many names; a person retrying their own name counts once, so an office machine shared
/// by a few dozen users does not reach it by mistyping.
///
/// An attempt counts as a failure when it starts (attempts sent at once cannot pass the limit
/// together); `failed` moves its time to the end of its check, `succeeded` takes it back. The
/// counts live in memory (a restart forgets them) and are bounded: `maxNames` names and
/// `maxAddresses` addresses, the least telling dropped first when full.
final class LoginLimiter: @unchecked Sendable {
    enum Decision: Equatable {
        case admitted(Attempt)
        /// The name failed too often: it may be tried again in this many seconds.
        case accountWaits(seconds: Int)
        /// The address failed for too many different names: it may try another in this many seconds.
        case addressWaits(seconds: Int)
    }

    /// An admitted attempt, to report its outcome.
    struct Attempt: Equatable {
        let name: String
        let address: String
    }

    struct Account {
        var failures: Int
        /// When the last failed check ended (or, while one runs, when it started), in ms.
        var last: UInt64
    }

    struct Guess {
        /// The name's hash: an address keeps at most `sprayNames` of them, whatever the names' length.
        var name: Int
        var time: UInt64
    }

    let freeFailures = 5
    let firstDelay: UInt64 = 5_000
    let maxDelay: UInt64 = 15 * 60 * 1000
    /// A name's failures are forgotten a day after the last one.
    let forgetAfter: UInt64 = 24 * 3600 * 1000
    let sprayNames = 30
    let sprayWindow: UInt64 = 15 * 60 * 1000
    let maxNames: Int
    let maxAddresses: Int

    private let clock: @Sendable () -> UInt64
    private let lock = NSLock()
    private var accounts: [String: Account] = [:]
    private var addresses: [String: [Guess]] = [:]

    /// - Parameter clock: the time in ms since 1970 (the node's clock; a test's own).
    init(maxNames: Int = 20_000, maxAddresses: Int = 10_000, clock: @escaping @Sendable () -> UInt64) {
        self.maxNames = maxNames
        self.maxAddresses = maxAddresses
        self.clock = clock
    }

    /// How long a name waits after its `failures`-th failure (nothing before `freeFailures`).
    func delay(afterFailures failures: Int) -> UInt64 {
        guard failures >= freeFailures else { return 0 }
        let doublings = min(failures - freeFailures, 20)
        return min(maxDelay, firstDelay << UInt64(doublings))
    }

    /// A user name as the limiter keys it: names are at most 64 bytes, so a longer one (which no
    /// user can have) is cut there and cannot make an entry larger.
    static func key(_ name: String) -> String {
        guard name.utf8.count > 64 else { return name }
        var bytes = 0
        var end = name.unicodeScalars.startIndex
        for scalar in name.unicodeScalars {
            bytes += UTF8.width(scalar)
            if bytes > 64 { break }
            end = name.unicodeScalars.index(after: end)
        }
        return String(name.unicodeScalars[..<end])
    }

    /// Admits an attempt for `name` from `address`, counting it as a failure until told otherwise,
    /// or says how long the name (or the address) must wait.
    func begin(name: String, address: String) -> Decision {
        let now = clock()
        let key = Self.key(name)
        return lock.withLock {
            var account = accounts[key] ?? Account(failures: 0, last: now)
            if account.last + forgetAfter <= now { account.failures = 0 }
            let allowed = account.last + delay(afterFailures: account.failures)
            if allowed > now { return .accountWaits(seconds: Self.seconds(allowed - now)) }

            var guesses = (addresses[address] ?? []).filter { $0.time + sprayWindow > now }
            let hash = key.hashValue
            if guesses.count >= sprayNames, !guesses.contains(where: { $0.name == hash }) {
                addresses[address] = guesses
                let oldest = guesses.map(\.time).min() ?? now
                return .addressWaits(seconds: Self.seconds(oldest + sprayWindow - now))
            }

            if accounts[key] == nil && accounts.count >= maxNames { makeRoomForNames(now) }
            account.failures += 1
            account.last = now
            accounts[key] = account
            if addresses[address] == nil && addresses.count >= maxAddresses { makeRoomForAddresses(now) }
            guesses.removeAll { $0.name == hash }
            guesses.append(Guess(name: hash, time: now))
            addresses[address] = guesses
            return .admitted(Attempt(name: key, address: address))
        }
    }

    /// The attempt's password was wrong: the name's wait runs from now.
    func failed(_ attempt: Attempt) {
        let now = clock()
        lock.withLock {
            if var account = accounts[attempt.name] {
                account.last = max(account.last, now)
                accounts[attempt.name] = account
            }
        }
    }

    /// The attempt's password was right: the name starts afresh, and the address no longer counts it.
    func succeeded(_ attempt: Attempt) {
        lock.withLock {
            accounts[attempt.name] = nil
            let hash = attempt.name.hashValue
            if var guesses = addresses[attempt.address] {
                guesses.removeAll { $0.name == hash }
                addresses[attempt.address] = guesses.isEmpty ? nil : guesses
            }
        }
    }

    /// What the limiter holds, for tests: names and addresses.
    var sizes: (names: Int, addresses: Int) { lock.withLock { (accounts.count, addresses.count) } }

    /// Full of names: forget those whose failures are forgotten anyway, then the tenth that says
    /// least (fewest failures first, and among them the longest quiet), so that names invented to
    /// fill the table push out each other before a name that is being waited out.
    private func makeRoomForNames(_ now: UInt64) {
        accounts = accounts.filter { $0.value.last + forgetAfter > now }
        guard accounts.count >= maxNames else { return }
        let drop = accounts.sorted { a, b in
            let (x, y) = (min(a.value.failures, freeFailures), min(b.value.failures, freeFailures))
            return x != y ? x < y : a.value.last < b.value.last
        }.prefix(max(1, maxNames / 10))
        for (name, _) in drop { accounts[name] = nil }
    }

    private func makeRoomForAddresses(_ now: UInt64) {
        addresses = addresses.filter { $0.value.contains { $0.time + sprayWindow > now } }
        guard addresses.count >= maxAddresses else { return }
        let drop = addresses.sorted { ($0.value.last?.time ?? 0) < ($1.value.last?.time ?? 0) }.prefix(max(1, maxAddresses / 10))
        for (address, _) in drop { addresses[address] = nil }
    }

    private static func seconds(_ millis: UInt64) -> Int { Int((millis + 999) / 1000) }

    /// The address an attempt is counted under: an IPv4 address as it is, an IPv6 one by its /64
    /// (one machine usually holds a whole /64), an IPv4-mapped IPv6 one as its IPv4 address.
    static func addressKey(_ address: SocketAddress?) -> String {
        guard let address else { return "unknown" }
        guard case .v6(let v6) = address else { return address.ipAddress ?? "unknown" }
        let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        guard bytes.count == 16 else { return address.ipAddress ?? "unknown" }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return bytes[12...].map(String.init).joined(separator: ".")
        }
        return stride(from: 0, to: 8, by: 2).map { String(format: "%x", Int(bytes[$0]) << 8 | Int(bytes[$0 + 1])) }.joined(separator: ":") + "::/64"
    }
}
