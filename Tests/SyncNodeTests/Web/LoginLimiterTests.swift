import Foundation
import NIOCore
import SyncNode
import Testing

@testable import SyncWeb

/// The login limiter on a clock the test moves: the delay schedule per account, the looser bound
/// per address, and its memory under invented names. (Over HTTP: `LoginLimitTests`.)
@Suite struct LoginLimiterTests {
    let clock = ManualClock(millis: 1_700_000_000_000)
    func limiter(maxNames: Int = 20_000, maxAddresses: Int = 10_000) -> LoginLimiter {
        LoginLimiter(maxNames: maxNames, maxAddresses: maxAddresses, clock: { [clock] in clock.nowMillis() })
    }

    /// One failed check: admitted, then reported failed a second later (as the login answers).
    @discardableResult
    func fail(_ limiter: LoginLimiter, _ name: String, from address: String = "10.0.0.1") -> LoginLimiter.Decision {
        let decision = limiter.begin(name: name, address: address)
        if case .admitted(let attempt) = decision {
            clock.advance(by: 1000)
            limiter.failed(attempt)
        }
        return decision
    }

    static func admitted(_ decision: LoginLimiter.Decision) -> Bool {
        if case .admitted = decision { true } else { false }
    }

    @Test func anAccountWaitsADoublingDelayAfterFiveFailuresFromAnyAddress() {
        let limiter = limiter()
        #expect((0...16).map { limiter.delay(afterFailures: $0) / 1000 } == [0, 0, 0, 0, 0, 5, 10, 20, 40, 80, 160, 320, 640, 900, 900, 900, 900])
        #expect(limiter.delay(afterFailures: 10_000) == 900_000, "no overflow")
        for i in 1...5 {
            guard case .admitted = fail(limiter, "zhang", from: "10.0.0.\(i)") else {
                Issue.record("failure \(i) was not admitted")
                return
            }
        }
        // Every address now waits the same 5 s for zhang; another name does not.
        for address in ["10.0.0.1", "10.0.0.9", "192.168.1.20"] {
            #expect(limiter.begin(name: "zhang", address: address) == .accountWaits(seconds: 5))
        }
        guard case .admitted(let li) = limiter.begin(name: "li", address: "10.0.0.1") else {
            Issue.record("li was held up by zhang's failures")
            return
        }
        limiter.succeeded(li)
        // Each further failure doubles the wait, up to 15 minutes; each wait is counted from the
        // end of the last failed check, and a refused attempt does not lengthen it.
        var waits: [Int] = []
        for _ in 0..<10 {
            guard case .accountWaits(let seconds) = limiter.begin(name: "zhang", address: "10.0.0.7") else {
                Issue.record("zhang was not held up")
                return
            }
            waits.append(seconds)
            clock.advance(by: UInt64(seconds) * 1000 - 1)
            #expect(limiter.begin(name: "zhang", address: "10.0.0.8") == .accountWaits(seconds: 1))
            clock.advance(by: 1)
            #expect(Self.admitted(fail(limiter, "zhang", from: "10.0.0.8")))
        }
        #expect(waits == [5, 10, 20, 40, 80, 160, 320, 640, 900, 900])
        // A success (the right password, after the wait) starts the name afresh.
        clock.advance(by: 900_000)
        guard case .admitted(let right) = limiter.begin(name: "zhang", address: "10.0.0.8") else {
            Issue.record("zhang was not admitted after the wait")
            return
        }
        limiter.succeeded(right)
        for _ in 1...5 { fail(limiter, "zhang") }
        #expect(limiter.begin(name: "zhang", address: "10.0.0.1") == .accountWaits(seconds: 5))
        // A day without failures forgets them.
        clock.advance(by: 24 * 3600 * 1000)
        #expect(Self.admitted(fail(limiter, "zhang")))
        #expect(Self.admitted(limiter.begin(name: "zhang", address: "10.0.0.1")), "one failure after a day is the first")
    }

    /// Attempts sent at once count when they start: a burst of 20 gets 5 checks, not 20.
    @Test func aBurstForOneAccountGetsFiveChecks() {
        let limiter = limiter()
        let decisions = (0..<20).map { limiter.begin(name: "zhang", address: "10.0.0.\($0)") }
        #expect(decisions.filter(Self.admitted).count == 5)
        #expect(decisions.dropFirst(5).allSatisfy { $0 == .accountWaits(seconds: 5) })
    }

    /// An address that failed for 30 different names within 15 minutes may try only those names;
    /// any other address may try any name; a person mistyping their own name counts once.
    @Test func oneAddressSprayingManyNamesIsSlowedAndNobodyElse() {
        let limiter = limiter()
        for _ in 1...4 { fail(limiter, "zhang", from: "10.0.0.1") }
        for i in 1...29 { fail(limiter, "user\(i)", from: "10.0.0.1") }
        #expect(limiter.begin(name: "new-name", address: "10.0.0.1") == .addressWaits(seconds: 900 - 30), "the oldest (zhang's) left 30 s ago")
        guard case .admitted = limiter.begin(name: "user1", address: "10.0.0.1") else {
            Issue.record("a name the address already tried was refused")
            return
        }
        guard case .admitted = limiter.begin(name: "new-name", address: "10.0.0.2") else {
            Issue.record("another address was refused")
            return
        }
        clock.advance(by: 900_000)
        guard case .admitted = limiter.begin(name: "another-name", address: "10.0.0.1") else {
            Issue.record("the address was still refused after 15 minutes")
            return
        }
    }

    /// Names and addresses invented by the thousand stay within the bounds, and an account
    /// waiting out its delay keeps its count through the flood.
    @Test func inventedNamesAndAddressesStayBounded() {
        let limiter = limiter(maxNames: 200, maxAddresses: 50)
        for _ in 1...5 { fail(limiter, "zhang") }
        for i in 0..<5_000 {
            _ = limiter.begin(name: "invented-\(i)-" + String(repeating: "x", count: 1000), address: "10.\(i / 25).\(i % 25).1")
        }
        let sizes = limiter.sizes
        #expect(sizes.names <= 200 && sizes.addresses <= 50, "\(sizes)")
        guard case .accountWaits = limiter.begin(name: "zhang", address: "10.200.0.1") else {
            Issue.record("zhang's failures were pushed out by invented names")
            return
        }
        #expect(LoginLimiter.key(String(repeating: "名", count: 100)).utf8.count <= 64)
    }

    @Test func theRefusalSaysHowLongToWaitInChinese() {
        let zh = Language.zh.labels
        let (text, seconds) = WebInterface.waitMessage(.accountWaits(seconds: 5), zh)
        #expect(text == "此用户名登录失败次数过多，请 5 秒后再试。" && seconds == 5)
        #expect(WebInterface.waitMessage(.accountWaits(seconds: 900), zh).0 == "此用户名登录失败次数过多，请 15 分钟后再试。")
        #expect(WebInterface.waitMessage(.addressWaits(seconds: 150), zh).0 == "从此网络地址登录失败的用户名过多，请 2 分 30 秒后再试。")
        #expect(WebInterface.waitMessage(.accountWaits(seconds: 40), Language.en.labels).0.hasSuffix("try again in 40 seconds."))
    }

    @Test func anIPv6ClientIsCountedByItsSlash64() throws {
        #expect(LoginLimiter.addressKey(try SocketAddress(ipAddress: "127.0.0.2", port: 1)) == "127.0.0.2")
        #expect(LoginLimiter.addressKey(try SocketAddress(ipAddress: "::ffff:10.1.2.3", port: 1)) == "10.1.2.3")
        #expect(LoginLimiter.addressKey(try SocketAddress(ipAddress: "2001:db8:1:2:3:4:5:6", port: 1)) == "2001:db8:1:2::/64")
        #expect(LoginLimiter.addressKey(try SocketAddress(ipAddress: "2001:db8:1:2:ffff::9", port: 1)) == "2001:db8:1:2::/64")
        #expect(LoginLimiter.addressKey(nil) == "unknown")
    }
}
