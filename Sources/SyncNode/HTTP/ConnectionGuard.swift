import Foundation
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Keeps half-sent requests from filling the node's connections (issue 23, item 2).
///
/// A connection is *pending* from when it opens until its first request head is complete, and
/// again from the end of each answer until the next head: what a stranger holding connections with
/// a partial request line keeps them in. A pending connection is closed after `headerDeadline`
/// (`keepAliveDeadline` between requests on a kept-alive connection); an
/// address may hold at most `pendingPerAddress` of them (IPv6 counted by its /64), and the node at
/// most `pendingInAll`; past either bound the address's (or the node's) *oldest* pending
/// connection is closed, not the new one, so a caller that sends its request at once (`/health`,
/// a node's signed sync request, a browser) always gets in, from any address. Only a connection
/// that has waited longer than a grace (`newGrace` for a new one, `keptGrace` between requests)
/// is closed to make room: a burst of honest callers behind one address (a hundred nodes starting
/// a round together) is never cut, only connections that sit on a partial request. A connection
/// whose request is being read or answered is never closed by this.
public final class ConnectionGuard: Sendable {
    public struct Limits: Sendable {
        /// How long a new connection may take to send its first request head.
        public var headerDeadline: TimeAmount = .seconds(5)
        /// How long a kept-alive connection may wait for its next request after an answer.
        public var keepAliveDeadline: TimeAmount = .seconds(30)
        public var pendingPerAddress = 16
        public var pendingInAll = 512
        /// How long a new connection, and a kept-alive one between two requests, may wait before
        /// it may be closed to make room.
        public var newGrace: TimeAmount = .seconds(1)
        public var keptGrace: TimeAmount = .seconds(5)

        public init() {}
    }

    private struct Entry {
        var channel: any Channel
        var address: String
        /// When it may be closed to make room (uptime, ns).
        var evictable: UInt64
    }

    private struct State {
        var pending: [ObjectIdentifier: Entry] = [:]
        var perAddress: [String: [ObjectIdentifier]] = [:]
        var order: [ObjectIdentifier] = []
        var closedEarly = 0
    }

    let limits: Limits
    private let state = Mutex(State())

    public init(limits: Limits = Limits()) { self.limits = limits }

    /// Connections closed for waiting too long for a request head, or to make room.
    public var closedEarly: Int { state.withLock { $0.closedEarly } }

    /// The handler for one connection's pipeline (after HTTP decoding).
    public func handler() -> any RemovableChannelHandler { GuardHandler(guard: self) }

    /// The key an address is counted under: IPv4 whole, IPv6 by its /64.
    static func key(_ address: SocketAddress?) -> String {
        guard let address else { return "?" }
        switch address {
        case .v4(let a): return a.host
        case .v6:
            guard let bytes = address.ipAddress.flatMap({ IPv6Address(text: $0) }) else { return address.ipAddress ?? "?" }
            return bytes.prefix64
        default: return "local"
        }
    }

    func becamePending(_ channel: any Channel, grace: TimeAmount) {
        let id = ObjectIdentifier(channel)
        let address = Self.key(channel.remoteAddress)
        let now = DispatchTime.now().uptimeNanoseconds
        var evict: [any Channel] = []
        state.withLock { s in
            guard s.pending[id] == nil else { return }
            s.pending[id] = Entry(channel: channel, address: address, evictable: now + UInt64(max(0, grace.nanoseconds)))
            s.perAddress[address, default: []].append(id)
            s.order.append(id)
            // The oldest that waited past its grace goes; if none did, the bound waits for them.
            while let ids = s.perAddress[address], ids.count > limits.pendingPerAddress,
                let oldest = ids.first, let entry = s.pending[oldest], entry.evictable <= now
            {
                if let e = remove(oldest, &s) { evict.append(e.channel) }
            }
            while s.pending.count > limits.pendingInAll, let oldest = s.order.first, let entry = s.pending[oldest], entry.evictable <= now {
                if let e = remove(oldest, &s) { evict.append(e.channel) }
            }
            s.closedEarly += evict.count
        }
        for channel in evict { channel.close(promise: nil) }
    }

    func leftPending(_ channel: any Channel) {
        state.withLock { s in _ = remove(ObjectIdentifier(channel), &s) }
    }

    /// Closes `channel` if it is still pending (its deadline passed).
    func deadlinePassed(_ channel: any Channel) {
        let expired = state.withLock { s -> Bool in
            guard remove(ObjectIdentifier(channel), &s) != nil else { return false }
            s.closedEarly += 1
            return true
        }
        if expired { channel.close(promise: nil) }
    }

    private func remove(_ id: ObjectIdentifier, _ s: inout State) -> Entry? {
        guard let entry = s.pending.removeValue(forKey: id) else { return nil }
        if var ids = s.perAddress[entry.address] {
            ids.removeAll { $0 == id }
            s.perAddress[entry.address] = ids.isEmpty ? nil : ids
        }
        if let i = s.order.firstIndex(of: id) { s.order.remove(at: i) }
        return entry
    }
}

/// One connection's view: pending until a request head arrives, pending again once its answer
/// has been written, never pending while a request is read or answered.
private final class GuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let connections: ConnectionGuard
    private var deadline: Scheduled<Void>?

    init(guard connections: ConnectionGuard) { self.connections = connections }

    private func pending(_ context: ChannelHandlerContext, within: TimeAmount, grace: TimeAmount) {
        let channel = context.channel
        connections.becamePending(channel, grace: grace)
        deadline?.cancel()
        let connections = self.connections
        deadline = context.eventLoop.scheduleTask(in: within) { connections.deadlinePassed(channel) }
    }

    private func busy(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        connections.leftPending(context.channel)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { pending(context, within: connections.limits.headerDeadline, grace: connections.limits.newGrace) }
    }

    func channelActive(context: ChannelHandlerContext) {
        pending(context, within: connections.limits.headerDeadline, grace: connections.limits.newGrace)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        busy(context)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        busy(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { busy(context) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            // The answer is written: until the next request head, the connection waits again.
            let channel = context.channel
            let future = context.write(data)
            // Completed on this channel's event loop, so the handler and its context are used
            // where they live.
            future.assumeIsolated().whenComplete { [weak self] _ in
                guard let self, channel.isActive else { return }
                self.pending(context, within: self.connections.limits.keepAliveDeadline, grace: self.connections.limits.keptGrace)
            }
            future.cascade(to: promise)
            return
        }
        context.write(data, promise: promise)
    }
}

/// An IPv6 address's first 64 bits, as text: what one site is counted under.
private struct IPv6Address {
    let prefix64: String

    init?(text: String) {
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &address) { Array($0) }
        prefix64 = bytes.prefix(8).map { String(format: "%02x", $0) }.joined() + "::/64"
    }
}
