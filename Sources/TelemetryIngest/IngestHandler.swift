import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import TelemetryCore

/// What every connection of one server shares: the (clamped) configuration, counters, the stats log.
///
/// - Important: Immutable after init apart from `IngestMetrics`, `StatsLog` and the IP-warning clock, which
///   guard themselves.
final class IngestContext: Sendable {
    let configuration: IngestConfiguration
    let prefix: [UInt8]
    let metrics: IngestMetrics
    let statsLog: StatsLog?
    let log: @Sendable (String) -> Void
    /// The text of `GET /metrics`.
    let metricsText: @Sendable () -> String
    /// The slow-client rules every connection's `ConnectionGuard` enforces.
    let connectionPolicy: ConnectionPolicy
    private let lastIPWarningNanos = NIOLockedValueBox<UInt64>(0)

    init(configuration: IngestConfiguration, metrics: IngestMetrics, statsLog: StatsLog?,
         log: @escaping @Sendable (String) -> Void, metricsText: @escaping @Sendable () -> String) {
        self.configuration = configuration
        self.prefix = Array(configuration.urlPrefix.utf8)
        self.metrics = metrics
        self.statsLog = statsLog
        self.log = log
        self.metricsText = metricsText
        self.connectionPolicy = ConnectionPolicy(configuration)
    }

    /// The seed logged every over-long IP; this logs at most one line every 10 s.
    func warnIPTooLong(bytes: Int) {
        let now = monotonicNanoseconds()
        let due = lastIPWarningNanos.withLockedValue { last -> Bool in
            guard last == 0 || now - last >= 10_000_000_000 else { return false }
            last = now
            return true
        }
        if due { log("client IP of \(bytes) bytes is over max_ip_length (\(configuration.limits.maxIPBytes)); stored 0.0.0.0") }
    }
}

/// The ingest endpoint for one connection (`spec/raw-log.md` §7.1): routes each request, applies the checks in
/// the spec's order before the body is read, collects the body, hands the record to the log and answers 200 only
/// when the log says the bytes were written.
///
/// Sits behind `HTTPServerPipelineHandler`, so requests arrive one at a time even when pipelined and responses
/// leave in order. A response may be sent before its request's body is complete (202, 404, 411, 503, …): the rest
/// of the body is then read and dropped, and the connection stays usable — except after `Expect: 100-continue`
/// (the client may never send the body) and after 400/408, where the connection is closed.
///
/// Tells the connection's `ConnectionGuard` (the first handler of the pipeline) where the request is, and answers
/// the guard's `SlowRequestEvent`s: 408 and close (`docs/ingest.md` "Timeouts and limits").
///
/// - Important: Not `Sendable`; lives on its channel's event loop.
final class IngestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Between requests.
        case idle
        /// A POST passed the head checks; collecting its body.
        case receiving
        /// This request was answered already; dropping the rest of it until `.end`.
        case discarding
        /// Body complete, record queued; waiting for the log's answer.
        case awaitingLog
    }

    private let shared: IngestContext
    private let sink: SubmissionSink
    private let connectionGuard: ConnectionGuard
    private var state = State.idle
    private var channelIsActive = true
    private var okBody: ByteBuffer?

    // The request in progress.
    private var startNanos: UInt64 = 0
    private var url = ""
    private var keepAlive = true
    private var isHeadMethod = false
    private var expectsContinue = false
    private var chunked = false
    private var storedPath: [UInt8] = []
    private var ipField: [UInt8]?
    private var body: [UInt8] = []
    private var closeWhenRequestEnds = false
    /// Set once this handler decided to close the connection: nothing more is answered.
    private var closing = false

    init(shared: IngestContext, sink: SubmissionSink, connectionGuard: ConnectionGuard) {
        self.shared = shared
        self.sink = sink
        self.connectionGuard = connectionGuard
    }

    func handlerAdded(context: ChannelHandlerContext) {
        okBody = context.channel.allocator.buffer(string: IngestResponse.ok.message)
    }

    func channelActive(context: ChannelHandlerContext) {
        shared.metrics.connectionOpened()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        channelIsActive = false
        shared.metrics.connectionClosed()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(head): requestHead(context: context, head)
        case let .body(buffer): requestBody(context: context, buffer)
        case .end: requestEnd(context: context)
        }
    }

    // MARK: - Request parts

    private func requestHead(context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        startNanos = monotonicNanoseconds()
        connectionGuard.headReceived()
        url = head.uri
        keepAlive = head.isKeepAlive
        isHeadMethod = head.method == .HEAD
        expectsContinue = head.headers[canonicalForm: "expect"].contains { $0.lowercased() == "100-continue" }
        chunked = false
        closeWhenRequestEnds = false
        body = []
        ipField = nil
        state = .discarding   // unless the checks below accept the request

        switch head.method {
        case .GET:
            if head.uri == "/status" { return respond(context: context, .ok) }
            if head.uri == "/metrics" { return respond(context: context, .metrics(shared.metricsText())) }
            return respond(context: context, .notFound)
        case .POST:
            break
        default:
            return respond(context: context, .wrongMethod)
        }

        let limits = shared.configuration.limits
        // Row 1 / 1a / 1b: a usable length, or a chunked body (de-chunked by the decoder, checked as it arrives).
        chunked = head.headers[canonicalForm: "transfer-encoding"].contains { $0.lowercased().contains("chunked") }
        var declaredLength = 0
        if !chunked {
            let values = head.headers["Content-Length"]
            guard let first = values.first else { return respond(context: context, .missingContentLength) }
            guard let length = Int(first), length >= 0, values.allSatisfy({ Int($0) == length }) else {
                return respond(context: context, .badRequest)
            }
            if length == 0 { return respond(context: context, .missingContentLength) }
            // Row 2.
            if length > limits.maxDataBytes {
                shared.metrics.discardedOversized()
                return respond(context: context, .requestTooLarge(bytes: length, limit: limits.maxDataBytes))
            }
            declaredLength = length
        }
        // Row 4: the pathname (query and fragment stripped) must start with the prefix.
        guard let path = Self.storedPath(uri: head.uri, prefix: shared.prefix) else {
            return respond(context: context, .notFound)
        }
        // Row 5.
        if path.count > limits.maxPathBytes {
            shared.metrics.discardedLongPath()
            return respond(context: context, .pathTooLong(bytes: path.count, limit: limits.maxPathBytes))
        }
        // Row 5a: backpressure before the body is read.
        let ipAllowance = shared.configuration.includeRequestIP ? limits.maxIPBytes : 0
        let estimate = shared.configuration.version.preambleBytes + ipAllowance + path.count + declaredLength
        guard sink.hasRoom(forBytes: estimate) else { return respond(context: context, .busy) }

        storedPath = path
        if shared.configuration.includeRequestIP { ipField = clientIP(context: context, head: head) }
        body.reserveCapacity(chunked ? 16 * 1024 : declaredLength)
        state = .receiving
        if expectsContinue {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
        }
    }

    private func requestBody(context: ChannelHandlerContext, _ buffer: ByteBuffer) {
        guard state == .receiving else { return }
        let limit = shared.configuration.limits.maxDataBytes
        if chunked && body.count + buffer.readableBytes > limit {
            // Row 1b → row 2: a de-chunked body over the limit; the total is unknown, report what arrived so far.
            shared.metrics.discardedOversized()
            let received = body.count + buffer.readableBytes
            body = []
            return respond(context: context, .requestTooLarge(bytes: received, limit: limit))
        }
        buffer.withUnsafeReadableBytes { body.append(contentsOf: $0) }
    }

    private func requestEnd(context: ChannelHandlerContext) {
        switch state {
        case .receiving:
            if body.isEmpty {   // an empty chunked body
                requestOver()
                return respond(context: context, .missingContentLength)
            }
            let record = RawRecord(version: shared.configuration.version, timestamp: wallClockMilliseconds(),
                                   path: storedPath, ip: ipField, data: body)
            let receivedBytes = body.count
            body = []
            let promise = context.eventLoop.makePromise(of: Int.self)
            switch sink.submit(record, promise: promise) {
            case .full:
                promise.succeed(0)
                requestOver()
                respond(context: context, .busy)
            case .closed:
                promise.succeed(0)
                requestOver()
                respond(context: context, .shuttingDown)
            case .queued:
                state = .awaitingLog
                connectionGuard.awaitingLog()
                let recordBytes = record.encodedByteCount
                promise.futureResult.assumeIsolated().whenComplete { [self] result in
                    // Idle before answering: the pipeline handler may deliver the next pipelined request (or a
                    // parser error in it) from inside the response write.
                    requestOver()
                    shared.metrics.received(bytes: receivedBytes)
                    switch result {
                    case let .success(bytes): respond(context: context, .ok, storedBytes: bytes)
                    case let .failure(error):
                        let message = (error as? IngestError)?.responseMessage ?? "\(error)"
                        respond(context: context, .writeFailed(message: message), storedBytes: recordBytes)
                    }
                }
            }
        case .discarding:
            requestOver()
            if closeWhenRequestEnds && channelIsActive {
                closing = true
                context.close(promise: nil)
            }
        case .idle, .awaitingLog:
            break
        }
    }

    /// The request has fully arrived and needs no more reading: idle (before answering, so the answer's
    /// `Connection: close` closes at once and a pipelined next request may start inside the answer's write).
    private func requestOver() {
        state = .idle
        connectionGuard.requestFinished()
    }

    // MARK: - Events

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let slow = event as? SlowRequestEvent {
            return cutSlowRequest(context: context, phaseBytes: slow.phaseBytes)
        }
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            // Nothing received for the idle timeout. Between requests that is just an idle keep-alive connection;
            // in the middle of a head or body it is a slow request.
            switch (state, connectionGuard.phase) {
            case (.awaitingLog, _): break   // our own log is slow; the client is waiting for us
            case (.idle, .head) where connectionGuard.phaseBytes > 0:
                shared.metrics.timedOut(IngestTimeout(.head, .idle))
                cutSlowRequest(context: context, phaseBytes: connectionGuard.phaseBytes)
            case (.receiving, _), (.discarding, .body):
                shared.metrics.timedOut(IngestTimeout(.body, .idle))
                cutSlowRequest(context: context, phaseBytes: connectionGuard.phaseBytes)
            case (.idle, _), (.discarding, _):
                closing = true
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// A request broke a slow-client rule (counted already): 408 and close. A head that never completed is
    /// answered by the guard with raw bytes (the HTTP encoder has seen no request); a connection that never sent a
    /// byte, or whose request was answered already (a body being dropped), is closed without an answer.
    private func cutSlowRequest(context: ChannelHandlerContext, phaseBytes: Int) {
        guard !closing, channelIsActive else { return }
        switch state {
        case .receiving:
            respond(context: context, .requestTimeout)
        case .idle where phaseBytes > 0:
            closing = true
            let response = IngestResponse.requestTimeout
            shared.metrics.responded(status: Int(response.status.code))
            if let stats = shared.statsLog {
                stats.append(url: "", durationNanos: context.eventLoop.now.uptimeNanoseconds &- connectionGuard.phaseStart,
                             code: Int(response.status.code), size: 0, message: response.statsMessage,
                             timestampMs: wallClockMilliseconds())
            }
            connectionGuard.answerAndClose(response)
        case .idle, .discarding:
            closing = true
            context.close(promise: nil)
        case .awaitingLog:
            break   // never cut: the guard does not check a request being written
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard error is HTTPParserError, !closing, channelIsActive, context.channel.isActive else {
            // Not HTTP's fault (a reset, …), or the end of a stream that is closed or closing anyway (a body cut
            // short by our own close, a connection shed at the cap, a client gone mid-request): nothing to answer.
            closing = true
            context.close(promise: nil)
            return
        }
        // Malformed HTTP (row 1a: a negative or unparsable Content-Length is caught by the parser): answer 400
        // unless this request was answered already, then close — the rest of the stream cannot be trusted.
        switch state {
        case .idle, .receiving:
            body = []
            url = ""
            startNanos = monotonicNanoseconds()
            isHeadMethod = false
            respond(context: context, .badRequest)
        case .discarding, .awaitingLog:
            if state == .discarding && !closeWhenRequestEnds {
                // The answer went out early; the parser error is the next request's: answer it and close.
                url = ""
                startNanos = monotonicNanoseconds()
                isHeadMethod = false
                state = .idle
                respond(context: context, .badRequest)
            } else {
                context.close(promise: nil)
            }
        }
    }

    // MARK: - Responses

    /// Sends `response` for the current request (`storedBytes` is the stats log's `size`: the record length on 200
    /// and 500, else 0), counts it, writes the stats line, and closes the connection when the request or the
    /// response asks for it.
    private func respond(context: ChannelHandlerContext, _ response: IngestResponse, storedBytes: Int = 0) {
        guard !closing else { return }   // this connection already got its last answer
        let status = response.status
        shared.metrics.responded(status: Int(status.code))
        if let stats = shared.statsLog {
            stats.append(url: url, durationNanos: monotonicNanoseconds() &- startNanos, code: Int(status.code),
                         size: storedBytes, message: response.statsMessage, timestampMs: wallClockMilliseconds())
        }
        let requestStillArriving = state == .receiving || state == .discarding
        if state == .receiving {
            state = .discarding
            body = []
        }
        guard channelIsActive else { return }

        // The body may still be on its way: after `Expect: 100-continue` it may never come, after 400/408 the
        // stream is broken — close at once. Otherwise a request that asked for close is closed after its end.
        let closeNow = response.closesConnection || (requestStillArriving && expectsContinue)
        let close = closeNow || !keepAlive
        var headers = HTTPHeaders()
        headers.reserveCapacity(3)
        headers.add(name: "Content-Type", value: response.contentType)
        let bodyBuffer: ByteBuffer
        if case .ok = response, let okBody { bodyBuffer = okBody } else { bodyBuffer = context.channel.allocator.buffer(string: response.message) }
        headers.add(name: "Content-Length", value: String(bodyBuffer.readableBytes))
        if close { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !isHeadMethod { context.write(wrapOutboundOut(.body(.byteBuffer(bodyBuffer))), promise: nil) }
        if closeNow || (close && !requestStillArriving) {
            closing = true
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in loopBound.value.close(promise: nil) }
        } else {
            if close { closeWhenRequestEnds = true }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    // MARK: - Helpers

    /// The bytes stored for `uri` (`spec/raw-log.md` §2): the pathname — absolute-form scheme and authority,
    /// query and fragment removed — after `prefix`; nil when the pathname does not start with `prefix`.
    /// No percent-decoding, no normalisation.
    static func storedPath(uri: String, prefix: [UInt8]) -> [UInt8]? {
        var bytes = Substring(uri).utf8[...]
        for scheme in ["http://", "https://"] where bytes.starts(with: scheme.utf8) {
            bytes = bytes.dropFirst(scheme.utf8.count)
            if let slash = bytes.firstIndex(of: UInt8(ascii: "/")) { bytes = bytes[slash...] } else { bytes = "/".utf8[...] }
            break
        }
        if let end = bytes.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
            bytes = bytes[..<end]
        }
        guard bytes.starts(with: prefix) else { return nil }
        return Array(bytes.dropFirst(prefix.count))
    }

    /// The v2 IP field (§4): the whole `X-Forwarded-For` value (several header lines joined with ", ", as Node
    /// does), else the peer address; `0.0.0.0` when longer than `max_ip_length`.
    private func clientIP(context: ChannelHandlerContext, head: HTTPRequestHead) -> [UInt8] {
        let forwarded = head.headers["X-Forwarded-For"]
        let text: String
        if !forwarded.isEmpty {
            text = forwarded.joined(separator: ", ")
        } else {
            text = context.channel.remoteAddress?.ipAddress ?? ""
        }
        let bytes = Array(text.utf8)
        if bytes.count > shared.configuration.limits.maxIPBytes {
            shared.warnIPTooLong(bytes: bytes.count)
            return Array("0.0.0.0".utf8)
        }
        return bytes
    }
}
