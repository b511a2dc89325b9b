import NIOCore
import NIOHTTP1
import Synchronization

/// The slow-client rules of `IngestConfiguration` in nanoseconds (`docs/ingest.md` "Timeouts and limits").
struct ConnectionPolicy: Sendable {
    var headTimeout: UInt64
    var requestTimeout: UInt64
    /// 0: the minimum-rate rule is off.
    var minBytesPerSecond: UInt64
    var minRateGrace: UInt64
    var minRateWindow: UInt64

    init(_ configuration: IngestConfiguration) {
        headTimeout = UInt64(max(configuration.headTimeout.nanoseconds, 1))
        requestTimeout = UInt64(max(configuration.requestTimeout.nanoseconds, 1))
        minBytesPerSecond = UInt64(max(configuration.minBytesPerSecond, 0))
        minRateGrace = UInt64(max(configuration.minRateGrace.nanoseconds, 0))
        minRateWindow = UInt64(max(configuration.minRateWindow.nanoseconds, 1))
    }

    /// True when `bytes` over `nanoseconds` is below the minimum rate.
    func isBelowMinimumRate(bytes: Int, nanoseconds: UInt64) -> Bool {
        minBytesPerSecond > 0 && Double(bytes) * 1e9 < Double(minBytesPerSecond) * Double(nanoseconds)
    }
}

/// Sent up the pipeline by `ConnectionGuard` when a request breaks a slow-client rule; `IngestHandler` answers 408
/// (when it still can) and closes. Already counted in `IngestMetrics` when sent.
struct SlowRequestEvent: Sendable {
    var timeout: IngestTimeout
    /// Bytes received in the phase that was cut (0: a new connection that never sent anything).
    var phaseBytes: Int
}

/// The per-connection slow-client guard (`docs/ingest.md` "Timeouts and limits"): the first handler of a
/// connection's pipeline, before the HTTP decoder, so it sees every byte as it arrives — including a request head
/// that is still incomplete, which the decoder does not report.
///
/// It enforces the head timeout, the request (body) timeout and the minimum rate of heads and bodies with one
/// scheduled check per connection that re-arms itself only while a head or body is in progress; the per-read cost
/// is two additions. Times are the event loop's clock (`EventLoop.now`, uptime ns), so `EmbeddedEventLoop` tests
/// can advance them. `IngestHandler` reports the request's progress (`headReceived`, `awaitingLog`,
/// `requestFinished`); a broken rule is counted and sent on as a `SlowRequestEvent`. It also answers
/// `ConnectionLimiter`'s question "may this connection be shed, and since when is it idle?" (`sheddingSince`).
///
/// - Important: Not `Sendable`; lives on its channel's event loop.
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    enum Phase: Equatable {
        /// Keep-alive, between requests, no byte of the next one yet (only the idle timeout applies).
        case waiting
        /// A request head is arriving (from the accept, or from the first byte after the previous request).
        case head
        /// The head is complete; the body is arriving (or being read and dropped after an early answer).
        case body
        /// The request is complete and being appended to the log: no rule applies, never shed.
        case writing
        /// Cut, shed or closed: nothing more is checked.
        case done
    }

    private let policy: ConnectionPolicy
    private let metrics: IngestMetrics
    private var context: ChannelHandlerContext?
    private(set) var phase = Phase.head
    /// When the phase began (loop clock, ns).
    private(set) var phaseStart: UInt64 = 0
    /// Bytes received since the phase began.
    private(set) var phaseBytes = 0
    /// When the connection was accepted or its last request finished: the shedding order (oldest first).
    private var idleSince: UInt64 = 0
    /// Start of the current minimum-rate window; nil while in the grace period.
    private var windowStart: UInt64?
    private var windowBytes = 0
    /// Bytes that arrived while `.writing` (a pipelined next request): its head phase starts when this one ends.
    private var bytesWhileWriting = 0
    /// The size of the read being passed on now (0 between reads): a body phase that begins inside it counts it,
    /// so body bytes that came with the end of the head are not lost (the head's part is counted too).
    private var bytesOfThisRead = 0
    private var check: Scheduled<Void>?
    private var checkAt = UInt64.max

    init(policy: ConnectionPolicy, metrics: IngestMetrics) {
        self.policy = policy
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let now = context.eventLoop.now.uptimeNanoseconds
        phaseStart = now
        idleSince = now
        armCheck(by: now &+ firstCheckDelay(limit: policy.headTimeout))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let count = unwrapInboundIn(data).readableBytes
        switch phase {
        case .waiting: begin(.head, now: context.eventLoop.now.uptimeNanoseconds)
        case .writing: bytesWhileWriting += count
        case .head, .body, .done: break
        }
        phaseBytes &+= count
        windowBytes &+= count
        bytesOfThisRead = count
        context.fireChannelRead(data)
        bytesOfThisRead = 0
    }

    // MARK: - Progress reported by IngestHandler

    /// The request head is complete: the body phase begins.
    func headReceived() {
        guard let context, phase != .done else { return }
        begin(.body, now: context.eventLoop.now.uptimeNanoseconds)
    }

    /// The request is complete and queued for the log: nothing may cut or shed it until `requestFinished()`.
    func awaitingLog() {
        guard phase != .done else { return }
        phase = .writing
        bytesWhileWriting = 0
    }

    /// The request is over (answered and its body read): the connection is idle until the next byte — or at once
    /// in a new head phase when bytes of a pipelined request arrived meanwhile.
    func requestFinished() {
        guard let context, phase != .done else { return }
        let now = context.eventLoop.now.uptimeNanoseconds
        idleSince = now
        if phase == .writing && bytesWhileWriting > 0 {
            begin(.head, now: now)
            phaseBytes = bytesWhileWriting
        } else {
            phase = .waiting
        }
        bytesWhileWriting = 0
    }

    // MARK: - Shedding

    /// Since when this connection counts as idle for shedding (loop clock, ns; older is shed first), or nil when it
    /// must not be shed: a request being written to the log, or a body arriving at no less than the minimum rate.
    /// Between requests and while a head is arriving: the accept or the end of the previous request.
    func sheddingSince(now: UInt64) -> UInt64? {
        switch phase {
        case .waiting, .head: return idleSince
        case .body:
            let elapsed = max(now &- phaseStart, policy.minRateWindow)
            return policy.isBelowMinimumRate(bytes: phaseBytes, nanoseconds: elapsed) ? phaseStart : nil
        case .writing, .done: return nil
        }
    }

    /// Closes the connection to make room for a new one (counted by the caller).
    func shed() {
        guard let context, phase != .done else { return }
        stop()
        context.close(promise: nil)
    }

    /// Writes `response` as raw HTTP/1.1 bytes (with `Connection: close`) straight to the socket and closes: the
    /// answer to a request whose head never completed, which the HTTP encoder cannot send (it has seen no request).
    func answerAndClose(_ response: IngestResponse) {
        guard let context else { return }
        stop()
        var buffer = context.channel.allocator.buffer(capacity: 128)
        buffer.writeString("HTTP/1.1 \(response.status.code) \(response.status.reasonPhrase)\r\n"
                           + "Content-Type: \(response.contentType)\r\nContent-Length: \(response.message.utf8.count)\r\n"
                           + "Connection: close\r\n\r\n\(response.message)")
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in loopBound.value.close(promise: nil) }
    }

    // MARK: - The check

    private func begin(_ next: Phase, now: UInt64) {
        phase = next
        phaseStart = now
        phaseBytes = next == .body ? bytesOfThisRead : 0
        windowStart = nil
        windowBytes = 0
        armCheck(by: now &+ firstCheckDelay(limit: next == .head ? policy.headTimeout : policy.requestTimeout))
    }

    /// Time from a phase's start to its first check: its deadline, or the end of the grace period if earlier.
    private func firstCheckDelay(limit: UInt64) -> UInt64 {
        policy.minBytesPerSecond > 0 ? min(limit, policy.minRateGrace) : limit
    }

    /// Makes sure a check runs no later than `deadline` (loop clock, ns); an earlier pending check is kept.
    private func armCheck(by deadline: UInt64) {
        guard let context, deadline < checkAt else { return }
        check?.cancel()
        checkAt = deadline
        check = context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) { [self] in
            runCheck()
        }
    }

    private func runCheck() {
        check = nil
        checkAt = .max
        guard let context, context.channel.isActive, phase == .head || phase == .body else { return }
        let now = context.eventLoop.now.uptimeNanoseconds
        let timeoutPhase: IngestTimeout.Phase = phase == .head ? .head : .body
        let deadline = phaseStart &+ (phase == .head ? policy.headTimeout : policy.requestTimeout)
        if now >= deadline { return cut(IngestTimeout(timeoutPhase, .timeout)) }
        var next = deadline
        if policy.minBytesPerSecond > 0 {
            let graceEnd = phaseStart &+ policy.minRateGrace
            if now < graceEnd {
                next = min(next, graceEnd)
            } else if let start = windowStart, now &- start >= policy.minRateWindow {
                if policy.isBelowMinimumRate(bytes: windowBytes, nanoseconds: now &- start) {
                    return cut(IngestTimeout(timeoutPhase, .minRate))
                }
                windowStart = now
                windowBytes = 0
                next = min(next, now &+ policy.minRateWindow)
            } else if let start = windowStart {
                next = min(next, start &+ policy.minRateWindow)
            } else {
                windowStart = now   // the first window begins when the grace period ends
                windowBytes = 0
                next = min(next, now &+ policy.minRateWindow)
            }
        }
        armCheck(by: next)
    }

    private func cut(_ timeout: IngestTimeout) {
        guard let context else { return }
        let bytes = phaseBytes
        stop()
        metrics.timedOut(timeout)
        context.fireUserInboundEventTriggered(SlowRequestEvent(timeout: timeout, phaseBytes: bytes))
    }

    private func stop() {
        phase = .done
        check?.cancel()
        check = nil
        checkAt = .max
    }
}

/// The connection cap (`IngestConfiguration.maxConnections`): counts open connections with one atomic, keeps a
/// registry of each event loop's connections on that loop (no lock), and when a new connection takes the count
/// over the cap, closes the oldest idle connection (`ConnectionGuard.sheddingSince`) of the new one's event loop —
/// or of the next loop that has one — and refuses (closes) the new connection when none has.
///
/// - Important: `Sendable`: the count is atomic; each registry is bound to its event loop (`NIOLoopBoundBox`).
final class ConnectionLimiter: Sendable {
    /// The cap.
    let limit: Int
    private let open = Atomic<Int>(0)
    private let loops: [any EventLoop]
    private let registries: [NIOLoopBoundBox<LoopConnections>]
    private let metrics: IngestMetrics

    init(limit: Int, group: any EventLoopGroup, metrics: IngestMetrics) {
        self.limit = limit
        self.metrics = metrics
        let loops = Array(group.makeIterator())
        self.loops = loops
        registries = loops.map { NIOLoopBoundBox.makeBoxSendingValue(LoopConnections(), eventLoop: $0) }
    }

    /// Open connections now.
    var openCount: Int { open.load(ordering: .relaxed) }

    /// Registers a new connection (on its event loop, once its pipeline is configured) and sheds one when over
    /// the cap.
    func admit(_ channel: any Channel, guard connectionGuard: ConnectionGuard) {
        guard let index = loops.firstIndex(where: { $0 === channel.eventLoop }) else { return }
        let id = ObjectIdentifier(connectionGuard)
        registries[index].value.guards[id] = connectionGuard
        let count = open.wrappingAdd(1, ordering: .relaxed).newValue
        let registries = self.registries
        channel.closeFuture.whenComplete { [self] _ in
            open.wrappingSubtract(1, ordering: .relaxed)
            registries[index].value.guards[id] = nil
        }
        if count > limit { shed(onLoop: index, sparing: id, newcomer: channel, loopsTried: 0) }
    }

    /// Sheds the oldest idle connection of loop `index` (running on it), else tries the next loop; after every
    /// loop, closes `newcomer`.
    private func shed(onLoop index: Int, sparing id: ObjectIdentifier, newcomer: any Channel, loopsTried: Int) {
        guard open.load(ordering: .relaxed) > limit else { return }   // others closed meanwhile
        if let victim = registries[index].value.oldestSheddable(sparing: id, now: loops[index].now.uptimeNanoseconds) {
            victim.shed()
            metrics.shedConnection()
            return
        }
        guard loopsTried + 1 < loops.count else {
            newcomer.close(promise: nil)
            metrics.refusedConnection()
            return
        }
        let next = (index + 1) % loops.count
        loops[next].execute { [self] in shed(onLoop: next, sparing: id, newcomer: newcomer, loopsTried: loopsTried + 1) }
    }
}

/// One event loop's open connections, for shedding. Touched only on that loop.
final class LoopConnections {
    var guards: [ObjectIdentifier: ConnectionGuard] = [:]

    /// The sheddable connection idle the longest, other than `sparing`.
    /// - Complexity: O(connections on this loop); runs only when the cap is reached.
    func oldestSheddable(sparing: ObjectIdentifier, now: UInt64) -> ConnectionGuard? {
        var best: (since: UInt64, guard: ConnectionGuard)?
        for (id, candidate) in guards where id != sparing {
            guard let since = candidate.sheddingSince(now: now) else { continue }
            if since < best?.since ?? .max { best = (since, candidate) }
        }
        return best?.guard
    }
}
