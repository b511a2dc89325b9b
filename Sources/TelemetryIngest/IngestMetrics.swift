import NIOConcurrencyHelpers

/// One way a request can be cut for being slow (`docs/ingest.md` "Timeouts and limits"): the `phase` and `rule`
/// labels of `telemetry_ingest_timeouts_total`.
public struct IngestTimeout: Hashable, Sendable, CustomStringConvertible {
    /// Which part of the request was too slow.
    public enum Phase: String, Sendable, CaseIterable {
        /// The request head (request line and headers), from the accept or the first byte after the previous request.
        case head
        /// The body, from the complete head to its end.
        case body
    }

    /// Which rule cut it.
    public enum Rule: String, Sendable, CaseIterable {
        /// The phase's deadline: `headTimeout` for the head, `requestTimeout` for the body.
        case timeout
        /// Fewer than `minBytesPerSecond` bytes arrived in one `minRateWindow` after the `minRateGrace`.
        case minRate = "min_rate"
        /// No byte at all for `idleTimeout` while the phase was in progress.
        case idle
    }

    /// The part of the request that was too slow.
    public var phase: Phase
    /// The rule that cut it.
    public var rule: Rule

    public init(_ phase: Phase, _ rule: Rule) {
        self.phase = phase
        self.rule = rule
    }

    /// `phase/rule`, e.g. `head/timeout`.
    public var description: String { "\(phase.rawValue)/\(rule.rawValue)" }
}

/// Counters of one ingest server, served at `GET /metrics` in the Prometheus text format (version 0.0.4).
///
/// All counters start at 0 when the server starts. Byte counts are bytes; `received` counts request bodies as
/// they arrived on the wire (maybe gzip), `stored` counts whole encoded records (preamble + IP + path + data).
///
/// - Important: Thread-safe: every mutation takes `state`'s lock (event loops and log writers update it).
public final class IngestMetrics: Sendable {
    /// A consistent copy of the counters.
    public struct Snapshot: Sendable, Equatable {
        /// Responses sent, by HTTP status code.
        public var responses: [Int: Int] = [:]
        /// Body bytes received in POST requests that reached the log step (200 or 500).
        public var receivedBytes = 0
        /// Records written to a log file and acknowledged.
        public var storedRecords = 0
        /// Encoded record bytes written and acknowledged.
        public var storedBytes = 0
        /// Submissions answered 202 because the body was over `max_data_length` (hazards.md BR-02).
        public var discardedOversized = 0
        /// Submissions answered 202 because the path was over `max_path_length`.
        public var discardedLongPath = 0
        /// Failed log writes (each failed batch counts once; its requests are answered 500).
        public var writeErrors = 0
        /// Files renamed to `.finished`.
        public var filesFinished = 0
        /// `fdatasync` calls on log files.
        public var fsyncs = 0
        /// Stats-log lines dropped because the stats writer fell behind.
        public var statsLinesDropped = 0
        /// Open client connections now.
        public var openConnections = 0
        /// Requests cut for being slow (answered 408 when a response could still be sent, connection closed), by
        /// phase and rule.
        public var timeouts: [IngestTimeout: Int] = [:]
        /// Connections closed to make room for a new one at the connection cap (the oldest idle first).
        public var connectionsShed = 0
        /// New connections closed at once because the cap was reached and no open connection could be shed.
        public var connectionsRefused = 0

        /// All requests cut for being slow.
        public var timeoutCount: Int { timeouts.values.reduce(0, +) }

        /// Total responses.
        public var requests: Int { responses.values.reduce(0, +) }
    }

    private let state = NIOLockedValueBox(Snapshot())

    /// A server's counters, all 0.
    public init() {}

    /// A copy of the counters now.
    public var snapshot: Snapshot { state.withLockedValue { $0 } }

    func responded(status: Int) { state.withLockedValue { $0.responses[status, default: 0] += 1 } }
    func received(bytes: Int) { state.withLockedValue { $0.receivedBytes += bytes } }
    func stored(records: Int, bytes: Int) {
        state.withLockedValue { $0.storedRecords += records; $0.storedBytes += bytes }
    }
    func discardedOversized() { state.withLockedValue { $0.discardedOversized += 1 } }
    func discardedLongPath() { state.withLockedValue { $0.discardedLongPath += 1 } }
    func writeFailed() { state.withLockedValue { $0.writeErrors += 1 } }
    func finishedFile() { state.withLockedValue { $0.filesFinished += 1 } }
    func synced() { state.withLockedValue { $0.fsyncs += 1 } }
    func droppedStatsLines(_ count: Int) { state.withLockedValue { $0.statsLinesDropped += count } }
    func connectionOpened() { state.withLockedValue { $0.openConnections += 1 } }
    func connectionClosed() { state.withLockedValue { $0.openConnections -= 1 } }
    func timedOut(_ timeout: IngestTimeout) { state.withLockedValue { $0.timeouts[timeout, default: 0] += 1 } }
    func shedConnection() { state.withLockedValue { $0.connectionsShed += 1 } }
    func refusedConnection() { state.withLockedValue { $0.connectionsRefused += 1 } }

    /// The counters in the Prometheus text exposition format 0.0.4: `telemetry_ingest_*` families with `# HELP`
    /// and `# TYPE` lines; responses by `code` label, errors (status ≥ 400) by `code` as well. `queuedBytes` is the
    /// writers' queue gauge, read by the caller at scrape time; `maxConnections` the connection cap in effect.
    /// - Complexity: O(number of distinct status codes).
    public func prometheusText(queuedBytes: Int = 0, maxConnections: Int = 0) -> String {
        let s = snapshot
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: Int)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples { out += "\(name)\(sample.labels) \(sample.value)\n" }
        }
        let codes = s.responses.keys.sorted()
        family("telemetry_ingest_requests_total", "counter", "HTTP requests answered, by status code.",
               codes.map { ("{code=\"\($0)\"}", s.responses[$0] ?? 0) })
        family("telemetry_ingest_errors_total", "counter", "Requests answered with a status of 400 or more, by status code.",
               codes.filter { $0 >= 400 }.map { ("{code=\"\($0)\"}", s.responses[$0] ?? 0) })
        family("telemetry_ingest_received_bytes_total", "counter", "Submission body bytes received (as sent, maybe gzip).",
               [("", s.receivedBytes)])
        family("telemetry_ingest_stored_records_total", "counter", "Records written to raw logs and acknowledged.",
               [("", s.storedRecords)])
        family("telemetry_ingest_stored_bytes_total", "counter", "Encoded record bytes written to raw logs.",
               [("", s.storedBytes)])
        family("telemetry_ingest_discarded_total", "counter", "Submissions answered 202 and discarded, by reason.",
               [("{reason=\"too_large\"}", s.discardedOversized), ("{reason=\"path_too_long\"}", s.discardedLongPath)])
        family("telemetry_ingest_write_errors_total", "counter", "Failed raw-log writes (each answered 500).",
               [("", s.writeErrors)])
        family("telemetry_ingest_files_finished_total", "counter", "Raw-log files renamed to .finished.",
               [("", s.filesFinished)])
        family("telemetry_ingest_fsyncs_total", "counter", "fdatasync calls on raw-log files.", [("", s.fsyncs)])
        family("telemetry_ingest_stats_lines_dropped_total", "counter", "Stats-log lines dropped (stats writer behind).",
               [("", s.statsLinesDropped)])
        var timeoutSamples: [(labels: String, value: Int)] = []
        for phase in IngestTimeout.Phase.allCases {
            for rule in IngestTimeout.Rule.allCases {
                timeoutSamples.append(("{phase=\"\(phase.rawValue)\",rule=\"\(rule.rawValue)\"}", s.timeouts[IngestTimeout(phase, rule)] ?? 0))
            }
        }
        family("telemetry_ingest_timeouts_total", "counter",
               "Requests cut for being slow (408 when an answer could be sent; connection closed), by phase and rule.",
               timeoutSamples)
        family("telemetry_ingest_connections_shed_total", "counter",
               "Connections closed at the connection cap to make room for a new one (oldest idle first).",
               [("", s.connectionsShed)])
        family("telemetry_ingest_connections_refused_total", "counter",
               "New connections closed at the cap because no open connection could be shed.", [("", s.connectionsRefused)])
        family("telemetry_ingest_open_connections", "gauge", "Client connections open now.", [("", s.openConnections)])
        family("telemetry_ingest_max_connections", "gauge", "The connection cap in effect.", [("", maxConnections)])
        family("telemetry_ingest_queued_bytes", "gauge", "Record bytes waiting for a log writer now.", [("", queuedBytes)])
        return out
    }
}
