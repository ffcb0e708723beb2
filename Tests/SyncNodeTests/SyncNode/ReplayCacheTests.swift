import Testing

@testable import SyncNode

/// Issue 23 ("not yet tried"): the replay cache had no hard bound, only its 20-minute window, so
/// one authenticated node could grow it without end. Now each node and the whole cache are bounded;
/// past a bound a request is refused (503), never admitted without being remembered.
@Suite struct ReplayCacheTests {
    @Test func eachNodeAndTheWholeCacheAreBounded() {
        let cache = ReplayCache(perNode: 3, total: 5)
        let window: UInt64 = 1000
        for i in 0..<3 { #expect(cache.admit(node: "a", nonce: "\(i)", now: 0, window: window) == .admitted) }
        #expect(cache.admit(node: "a", nonce: "0", now: 1, window: window) == .replayed)
        #expect(cache.admit(node: "a", nonce: "3", now: 1, window: window) == .full, "node a is at its bound")
        #expect(cache.admit(node: "b", nonce: "0", now: 1, window: window) == .admitted, "another node is not held up by a")
        #expect(cache.admit(node: "b", nonce: "1", now: 1, window: window) == .admitted)
        #expect(cache.admit(node: "c", nonce: "0", now: 1, window: window) == .full, "the cache as a whole is at its bound")
        // Once the window has passed, the old nonces are forgotten and room is made again.
        #expect(cache.admit(node: "a", nonce: "3", now: 2000, window: window) == .admitted)
        #expect(cache.entries.count == 1)
    }
}
