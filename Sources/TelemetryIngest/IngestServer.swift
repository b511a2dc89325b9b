import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import TelemetryCore

/// `telemetry serve`: an HTTP/1.1 server (SwiftNIO) that receives ping submissions into rotating raw logs
/// (`spec/raw-log.md`, `docs/ingest.md`).
///
/// One event loop per core parses requests (keep-alive and pipelining supported) and applies the checks of §7.1;
/// accepted records go through a bounded queue to `configuration.writers` log writers (connections are assigned
/// round-robin), each appending to its own file; a request is answered 200 only after its record's bytes were
/// written. Each connection's first handler is a `ConnectionGuard` (head timeout, request timeout, minimum rate:
/// 408 and close), and a `ConnectionLimiter` keeps at most `maxConnections` open by shedding the oldest idle one
/// (`docs/ingest.md` "Timeouts and limits"). Files rotate by size and idle age and are renamed `.finished` when closed (§6); `onFinishedFile` is
/// called with each `.finished` path (from a writer thread: keep it short).
///
/// Lifecycle: `init` → `start()` (recovers files a dead server left, binds, returns the port) → `shutdown()`
/// (stop accepting, finish in-flight requests, write and finish the current files).
///
/// - Important: `@unchecked Sendable`: `serverChannel` and `phase` are guarded by `lock`; everything else is
///   immutable or guards itself.
public final class IngestServer: @unchecked Sendable {
    private enum Phase { case created, running, stopping, stopped }

    /// The configuration in effect (lengths clamped to the record format's ceilings).
    public let configuration: IngestConfiguration
    /// The seed's messages for limits that were clamped (§1.3); print them at start.
    public let clampMessages: [String]
    /// The server's counters (`GET /metrics`).
    public let metrics = IngestMetrics()

    private let log: @Sendable (String) -> Void
    private let onFinishedFile: (@Sendable (String) -> Void)?
    private let group: MultiThreadedEventLoopGroup
    private let writers: [SubmissionLog]
    private let statsLog: StatsLog?
    private let context: IngestContext
    private let limiter: ConnectionLimiter
    private let connections = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])
    private let nextWriter = NIOLockedValueBox(0)
    private let lock = NIOLock()
    /// Serialises `start()` and the beginning of `shutdown()`: a signal that arrives while the server is starting
    /// stops it once it is listening, never half-way.
    private let lifecycle = NIOLock()
    private let stoppedCondition = NSCondition()
    private var serverChannel: Channel?
    private var phase = Phase.created
    private var boundPort = 0

    /// Prepares a server: validates and clamps `configuration`, creates the log directory if needed, opens the
    /// stats log. Nothing listens until `start()`.
    /// - Parameters:
    ///   - log: console messages (write errors, recoveries, clamped limits); never request contents.
    ///   - onFinishedFile: called with the path of every file renamed `.finished`, on a log writer's thread.
    /// - Throws: `IngestError.invalidValue` for an out-of-range setting; `IngestError.io` when the log directory
    ///   cannot be created or written, or the stats log cannot be opened.
    public convenience init(configuration: IngestConfiguration, log: @escaping @Sendable (String) -> Void = { _ in },
                            onFinishedFile: (@Sendable (String) -> Void)? = nil) throws {
        try self.init(configuration: configuration, log: log, onFinishedFile: onFinishedFile, fileOperations: .posix)
    }

    init(configuration requested: IngestConfiguration, log: @escaping @Sendable (String) -> Void,
         onFinishedFile: (@Sendable (String) -> Void)?, fileOperations: LogFileOperations) throws {
        try requested.validate()
        let (configuration, messages) = requested.clampedToCeilings()
        self.configuration = configuration
        self.clampMessages = messages
        self.log = log
        self.onFinishedFile = onFinishedFile

        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: configuration.logPath, isDirectory: &isDirectory) {
            do {
                try FileManager.default.createDirectory(atPath: configuration.logPath, withIntermediateDirectories: true)
            } catch {
                throw IngestError.io(path: configuration.logPath, operation: "mkdir", errno: EACCES, message: "cannot create the log directory")
            }
        } else if !isDirectory.boolValue {
            throw IngestError.io(path: configuration.logPath, operation: "open", errno: ENOTDIR, message: String(cString: strerror(ENOTDIR)))
        }
        guard access(configuration.logPath, W_OK) == 0 else { throw IngestError.current(configuration.logPath, "access") }

        let metrics = self.metrics
        statsLog = try configuration.statsLogFile.map { try StatsLog(path: $0, metrics: metrics) }
        writers = (0..<configuration.writers).map { index in
            SubmissionLog(configuration: configuration, writerIndex: configuration.writers > 1 ? index : nil,
                          metrics: metrics, operations: fileOperations, log: log, onFinished: onFinishedFile)
        }
        let writers = self.writers
        let maxConnections = configuration.effectiveMaxConnections
        context = IngestContext(configuration: configuration, metrics: metrics, statsLog: statsLog, log: log,
                                metricsText: { metrics.prometheusText(queuedBytes: writers.reduce(0) { $0 + $1.queuedByteCount },
                                                                      maxConnections: maxConnections) })
        group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
        limiter = ConnectionLimiter(limit: maxConnections, group: group, metrics: metrics)
    }

    deinit {
        // A server that was never started (or was shut down) owns nothing else.
        if phase == .created { try? group.syncShutdownGracefully() }
    }

    /// The connection cap in effect (`IngestConfiguration.effectiveMaxConnections`).
    public var maxConnections: Int { limiter.limit }

    /// The bound port (the OS's choice when `configuration.port` is 0); 0 before `start()`.
    public var port: Int { lock.withLock { boundPort } }

    /// Recovers files a dead server on this host left unfinished (`LogRecovery`), starts the log writers and binds.
    /// Blocks until listening.
    /// - Returns: the bound port.
    /// - Throws: `IngestError.bindFailed` when the address cannot be bound; `IngestError.notRunning` when called
    ///   twice or after `shutdown()`.
    @discardableResult
    public func start() throws -> Int {
        lifecycle.lock()
        defer { lifecycle.unlock() }
        try lock.withLock {
            guard phase == .created else { throw IngestError.notRunning }
            phase = .running
        }
        for outcome in LogRecovery.recover(directory: configuration.logPath, logBase: configuration.logBase,
                                           hostName: currentHostName(), fsync: configuration.fsync, log: log) {
            if let finished = outcome.finishedPath {
                log("recovered \(outcome.records) record(s) of an unfinished file"
                    + (outcome.truncatedBytes > 0 ? ", cut a torn tail of \(outcome.truncatedBytes) bytes" : "") + ": \(finished)")
                onFinishedFile?(finished)
            } else {
                log("removed an unfinished file without a complete record: \(outcome.originalPath)")
            }
        }
        statsLog?.start()
        for writer in writers { writer.start() }

        let context = self.context
        let writers = self.writers
        let connections = self.connections
        let nextWriter = self.nextWriter
        let limiter = self.limiter
        let idleTimeout = TimeAmount.nanoseconds(configuration.idleTimeout.nanoseconds)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let index = nextWriter.withLockedValue { value -> Int in
                        defer { value = (value + 1) % writers.count }
                        return value
                    }
                    let connectionGuard = try IngestServer.configurePipeline(channel, context: context, sink: writers[index],
                                                                             idleTimeout: idleTimeout)
                    let id = ObjectIdentifier(channel)
                    connections.withLockedValue { $0[id] = channel }
                    channel.closeFuture.whenComplete { _ in _ = connections.withLockedValue { $0.removeValue(forKey: id) } }
                    limiter.admit(channel, guard: connectionGuard)
                }
            }
        do {
            let channel = try bootstrap.bind(host: configuration.host, port: configuration.port).wait()
            let port = channel.localAddress?.port ?? configuration.port
            lock.withLock {
                serverChannel = channel
                boundPort = port
            }
            return port
        } catch {
            for writer in writers { writer.close() }
            statsLog?.close()
            lock.withLock { phase = .stopped }
            try? group.syncShutdownGracefully()
            throw IngestError.bindFailed(host: configuration.host, port: configuration.port, message: "\(error)")
        }
    }

    /// The channel handlers of one connection: the slow-client guard (head timeout, request timeout, minimum
    /// rate; it sees the raw bytes), idle timeout, HTTP/1.1 decoder/encoder with pipelining assistance,
    /// `IngestHandler`. Also used by the `EmbeddedChannel` tests.
    /// - Returns: the connection's guard (for `ConnectionLimiter`).
    @discardableResult
    static func configurePipeline(_ channel: Channel, context: IngestContext, sink: SubmissionSink,
                                  idleTimeout: TimeAmount) throws -> ConnectionGuard {
        let pipeline = channel.pipeline.syncOperations
        let connectionGuard = ConnectionGuard(policy: context.connectionPolicy, metrics: context.metrics)
        try pipeline.addHandler(connectionGuard)
        try pipeline.addHandler(IdleStateHandler(readTimeout: idleTimeout))
        try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: false)
        try pipeline.addHandler(IngestHandler(shared: context, sink: sink, connectionGuard: connectionGuard))
        return connectionGuard
    }

    /// Graceful stop (SIGTERM/SIGINT): stop accepting; let every connection finish the request in progress (idle
    /// ones close at once); after `gracePeriod` close what is left; then write everything queued, finish the
    /// current files (renamed `.finished`, `onFinishedFile` called) and flush the stats log. Blocks until done;
    /// later calls wait for the first one.
    public func shutdown(gracePeriod: Duration = .seconds(10)) {
        let first: Bool = lifecycle.withLock { lock.withLock {
            switch phase {
            case .running: phase = .stopping; return true
            case .created: phase = .stopped; return false
            case .stopping, .stopped: return false
            }
        } }
        guard first else {
            waitUntilStopped()
            return
        }
        let channel = lock.withLock { serverChannel }
        try? channel?.close().wait()
        for connection in connections.withLockedValue({ Array($0.values) }) {
            connection.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        let deadline = monotonicNanoseconds() + UInt64(max(gracePeriod.nanoseconds, 0))
        while !connections.withLockedValue({ $0.isEmpty }) && monotonicNanoseconds() < deadline {
            usleep(5_000)
        }
        for connection in connections.withLockedValue({ Array($0.values) }) {
            try? connection.close().wait()
        }
        for writer in writers { writer.close() }
        statsLog?.close()
        try? group.syncShutdownGracefully()
        stoppedCondition.lock()
        lock.withLock { phase = .stopped }
        stoppedCondition.broadcast()
        stoppedCondition.unlock()
    }

    /// Blocks until `shutdown()` has finished (returns at once when the server never started).
    public func waitUntilStopped() {
        stoppedCondition.lock()
        while lock.withLock({ phase == .running || phase == .stopping }) { stoppedCondition.wait() }
        stoppedCondition.unlock()
    }

    /// Record bytes queued for the writers or being written now.
    var queuedBytes: Int { writers.reduce(0) { $0 + $1.queuedByteCount } }

    /// Paths of the files the writers are writing now, or will create on their next write (for tests).
    var currentFilePaths: [String] { writers.map(\.currentFilePath) }
}
