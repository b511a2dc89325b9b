import Foundation
import NIOCore
import TelemetryCore

/// When the submission log calls `fsync` (`docs/ingest.md` "Durability").
///
/// In every mode a 200 is sent only after the record's bytes were handed to the kernel with `write(2)`, so a
/// crash of the server process (even `kill -9`) loses nothing acknowledged; the modes differ in what a power loss
/// or kernel crash can lose.
public enum FsyncPolicy: String, Sendable, Equatable, CaseIterable {
    /// One group commit (`fdatasync`) of the open file every `IngestConfiguration.fsyncInterval` (default 1 s),
    /// and one before a file is finished. A power loss loses at most the last interval.
    case interval
    /// `fdatasync` after every batch of writes, before the batch's 200s are sent (group commit: concurrent
    /// requests share one sync).
    case always
    /// Never sync; the kernel writes back when it likes. Finished files are renamed without a sync.
    case never
}

/// Everything `telemetry serve` can be told: the seed server's configuration keys (`spec/raw-log.md` §7.3) plus
/// TelemetryEngine's additions. Lengths in bytes, durations as `Duration`.
public struct IngestConfiguration: Sendable, Equatable {
    /// Printed at start (`motd`).
    public var motd = "Telemetry Server (default configuration)"
    /// Address to bind (default loopback only).
    public var host = "127.0.0.1"
    /// Port to bind; 0 asks the OS for a free one (read it back from `IngestServer.port`).
    public var port = 8080
    /// Accepted path prefix, stripped before storage (`url_prefix`, §2).
    public var urlPrefix = "/submit/telemetry/"
    /// Largest body (`max_data_length`), largest stored path (`max_path_length`) and largest stored IP
    /// (`max_ip_length`) (§1.3). Clamp with `clampedToCeilings()` before use.
    public var limits = RawLogLimits.default
    /// Store the client IP: v2 records and `.v2.` file names (`include_request_ip`, §4).
    public var includeRequestIP = false
    /// Directory of the raw logs (`log_path`).
    public var logPath = "./"
    /// File name base (`log_base`, §6.1).
    public var logBase = "telemetry.log"
    /// A file is finished once it holds more than this many bytes (`max_log_size`, §6.2).
    public var maxLogBytes = 524_288_000
    /// Idle age after which a non-empty file is finished; also the period of the age check (`max_log_age_ms`).
    public var maxLogAge: Duration = .milliseconds(300_000)
    /// Per-request JSON-lines stats log (`stats_log_file`, §7.2); nil: none.
    public var statsLogFile: String?
    /// When log files are synced.
    public var fsync = FsyncPolicy.interval
    /// Period of the group commit in `FsyncPolicy.interval` mode.
    public var fsyncInterval: Duration = .seconds(1)
    /// Log writers, each with its own thread and file (file names get the writer index when > 1, §6.1).
    public var writers = 1
    /// Backpressure bound: bytes of records queued for a writer and not yet written. A submission that would go
    /// over it is answered 503 (§7.1 row 5a).
    public var queueCapacityBytes = 64 << 20
    /// Event-loop threads (default: one per core).
    public var eventLoopThreads = System.coreCount
    /// A connection that sends nothing for this long is closed (answered 408 first when a request is in progress).
    public var idleTimeout: Duration = .seconds(30)
    /// A request head (request line and headers) not complete this long after the connection was accepted — or,
    /// on a keep-alive connection, after the first byte of the next request — is answered 408 and its connection
    /// closed (a new connection that sent nothing is closed without an answer).
    public var headTimeout: Duration = .seconds(10)
    /// A request whose body is not complete this long after its head is answered 408 and its connection closed.
    public var requestTimeout: Duration = .seconds(30)
    /// The minimum rate of a request head or body in progress, bytes per second; 0 turns the rule off. After
    /// `minRateGrace` from the start of the head or body, every `minRateWindow` must bring at least
    /// `minBytesPerSecond × minRateWindow` bytes, else the request is answered 408 and its connection closed.
    public var minBytesPerSecond = 500
    /// How long a head or body may go before the minimum rate applies.
    public var minRateGrace: Duration = .seconds(5)
    /// The window the minimum rate is measured over.
    public var minRateWindow: Duration = .seconds(5)
    /// The most client connections open at once; nil: `defaultMaxConnections(...)` for this process's
    /// `RLIMIT_NOFILE`. A new connection over the cap sheds the oldest idle one (`docs/ingest.md`).
    public var maxConnections: Int?

    /// The seed's defaults (§7.3) with TelemetryEngine's additions at their defaults.
    public init() {}

    /// The connection cap in effect: `maxConnections`, or the default derived from `RLIMIT_NOFILE`.
    public var effectiveMaxConnections: Int {
        maxConnections ?? Self.defaultMaxConnections(openFileLimit: Self.openFileLimit(),
                                                     eventLoopThreads: eventLoopThreads, writers: writers)
    }

    /// The default connection cap for a process allowed `openFileLimit` descriptors: the limit less a reserve of
    /// 64 + 4 per event-loop thread and writer (standard streams, the listening socket, each loop's epoll, eventfd
    /// and timerfd, log files, the stats log, conversions), at least 16 and at most 10,000.
    public static func defaultMaxConnections(openFileLimit: Int, eventLoopThreads: Int, writers: Int) -> Int {
        let reserve = 64 + 4 * (eventLoopThreads + writers)
        return min(10_000, max(16, openFileLimit - reserve))
    }

    /// This process's soft `RLIMIT_NOFILE` (`Int.max` when unlimited or unreadable).
    public static func openFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return Int.max }   // rlim_t.max: RLIM_INFINITY
        return Int(clamping: limit.rlim_cur)
    }

    /// The raw-log version the server writes: v2 when `includeRequestIP`.
    public var version: RawLogVersion { includeRequestIP ? .v2 : .v1 }

    /// Hard ceilings of the record format (§1.3): what fits in `data_len`, `path_len` and `ip_len`.
    public static let ceilings = (maxDataBytes: Int(UInt32.max), maxPathBytes: Int(UInt16.max), maxIPBytes: Int(UInt8.max))

    /// The configuration with each length limit clamped to its ceiling, and the seed's message for each clamp
    /// ("Max supported value for '<label>' is <max> (you specified <v>). Using <max>.").
    public func clampedToCeilings() -> (configuration: IngestConfiguration, messages: [String]) {
        var copy = self
        var messages: [String] = []
        func clamp(_ value: inout Int, _ label: String, _ ceiling: Int) {
            if value > ceiling {
                messages.append("Max supported value for '\(label)' is \(ceiling) (you specified \(value)). Using \(ceiling).")
                value = ceiling
            }
        }
        clamp(&copy.limits.maxDataBytes, "max_data_length", Self.ceilings.maxDataBytes)
        clamp(&copy.limits.maxPathBytes, "max_path_length", Self.ceilings.maxPathBytes)
        clamp(&copy.limits.maxIPBytes, "max_ip_length", Self.ceilings.maxIPBytes)
        return (copy, messages)
    }

    /// Checks ranges that would make the server misbehave.
    /// - Throws: `IngestError.invalidValue` naming the first bad setting.
    public func validate() throws {
        func require(_ ok: Bool, _ key: String, _ reason: String) throws {
            if !ok { throw IngestError.invalidValue(key: key, reason: reason) }
        }
        try require((0...65_535).contains(port), "port", "must be 0–65535")
        try require(urlPrefix.hasPrefix("/"), "url_prefix", "must start with /")
        try require(limits.maxDataBytes >= 1, "max_data_length", "must be positive")
        try require(limits.maxPathBytes >= 0, "max_path_length", "must not be negative")
        try require(limits.maxIPBytes >= 7, "max_ip_length", "must be at least 7 (room for 0.0.0.0)")
        try require(!logBase.isEmpty && !logBase.contains("/"), "log_base", "must be a non-empty file name")
        try require(maxLogBytes >= 1, "max_log_size", "must be positive")
        try require(maxLogAge >= .milliseconds(1), "max_log_age_ms", "must be positive")
        try require(fsyncInterval >= .milliseconds(1), "fsync_interval_ms", "must be positive")
        try require((1...64).contains(writers), "writers", "must be 1–64")
        try require(queueCapacityBytes >= 1, "queue_bytes", "must be positive")
        try require((1...256).contains(eventLoopThreads), "threads", "must be 1–256")
        try require(idleTimeout >= .milliseconds(1), "idle_timeout_ms", "must be positive")
        try require(requestTimeout >= .milliseconds(1), "request_timeout_ms", "must be positive")
        try require(headTimeout >= .milliseconds(1), "head_timeout_ms", "must be positive")
        try require((0...1_000_000_000).contains(minBytesPerSecond), "min_bytes_per_second", "must be 0–1000000000")
        try require(minRateGrace >= .zero, "min_rate_grace_ms", "must not be negative")
        try require(minRateWindow >= .milliseconds(1), "min_rate_window_ms", "must be positive")
        try require(maxConnections.map { $0 >= 1 } ?? true, "max_connections", "must be positive")
    }

    /// Reads a JSON configuration file like the seed's `http/server_config.json` (`spec/raw-log.md` §7.3) on top
    /// of `self`: the seed's keys (`motd`, `port`, `url_prefix`, `max_data_length`, `max_path_length`,
    /// `max_ip_length`, `include_request_ip`, `log_path`, `log_base`, `max_log_size`, `max_log_age_ms`,
    /// `stats_log_file`) and TelemetryEngine's (`host`, `fsync`, `fsync_interval_ms`, `writers`, `queue_bytes`,
    /// `threads`, `idle_timeout_ms`, `head_timeout_ms`, `request_timeout_ms`, `min_bytes_per_second`,
    /// `min_rate_grace_ms`, `min_rate_window_ms`, `max_connections`). Unknown keys are ignored, as the seed did; a key
    /// of the wrong type is an error. A config without `motd` keeps "Telemetry Server" as the message.
    /// - Throws: `IngestError.invalidConfiguration` when the file cannot be read, is not a JSON object, or a key
    ///   has the wrong type.
    public func applyingConfigFile(_ path: String) throws -> IngestConfiguration {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw IngestError.invalidConfiguration(path: path, reason: "cannot read the file")
        }
        return try applyingConfigJSON(data, source: path)
    }

    /// `applyingConfigFile(_:)` on bytes already read; `source` names them in errors.
    /// - Throws: `IngestError.invalidConfiguration` as `applyingConfigFile(_:)`.
    public func applyingConfigJSON(_ data: Data, source: String) throws -> IngestConfiguration {
        let file: SeedConfigFile
        do {
            file = try JSONDecoder().decode(SeedConfigFile.self, from: data)
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw IngestError.invalidConfiguration(path: source, reason: "'\(key)' has the wrong type")
        } catch {
            throw IngestError.invalidConfiguration(path: source, reason: "not a JSON object")
        }
        var copy = self
        copy.motd = file.motd ?? "Telemetry Server"
        if let v = file.host { copy.host = v }
        if let v = file.port { copy.port = v }
        if let v = file.url_prefix { copy.urlPrefix = v }
        if let v = file.max_data_length { copy.limits.maxDataBytes = v }
        if let v = file.max_path_length { copy.limits.maxPathBytes = v }
        if let v = file.max_ip_length { copy.limits.maxIPBytes = v }
        if let v = file.include_request_ip { copy.includeRequestIP = v }
        if let v = file.log_path { copy.logPath = v }
        if let v = file.log_base { copy.logBase = v }
        if let v = file.max_log_size { copy.maxLogBytes = v }
        if let v = file.max_log_age_ms { copy.maxLogAge = .milliseconds(v) }
        if let v = file.stats_log_file { copy.statsLogFile = v }
        if let v = file.fsync {
            guard let policy = FsyncPolicy(rawValue: v) else {
                throw IngestError.invalidConfiguration(path: source, reason: "'fsync' must be interval, always or never")
            }
            copy.fsync = policy
        }
        if let v = file.fsync_interval_ms { copy.fsyncInterval = .milliseconds(v) }
        if let v = file.writers { copy.writers = v }
        if let v = file.queue_bytes { copy.queueCapacityBytes = v }
        if let v = file.threads { copy.eventLoopThreads = v }
        if let v = file.idle_timeout_ms { copy.idleTimeout = .milliseconds(v) }
        if let v = file.request_timeout_ms { copy.requestTimeout = .milliseconds(v) }
        if let v = file.head_timeout_ms { copy.headTimeout = .milliseconds(v) }
        if let v = file.min_bytes_per_second { copy.minBytesPerSecond = v }
        if let v = file.min_rate_grace_ms { copy.minRateGrace = .milliseconds(v) }
        if let v = file.min_rate_window_ms { copy.minRateWindow = .milliseconds(v) }
        if let v = file.max_connections { copy.maxConnections = v }
        return copy
    }
}

/// The keys of a seed configuration file (`spec/raw-log.md` §7.3) and TelemetryEngine's additions, spelled as
/// in the file. Absent keys keep the current value.
private struct SeedConfigFile: Decodable {
    var motd: String?
    var host: String?
    var port: Int?
    var url_prefix: String?
    var max_data_length: Int?
    var max_path_length: Int?
    var max_ip_length: Int?
    var include_request_ip: Bool?
    var log_path: String?
    var log_base: String?
    var max_log_size: Int?
    var max_log_age_ms: Int64?
    var stats_log_file: String?
    var fsync: String?
    var fsync_interval_ms: Int64?
    var writers: Int?
    var queue_bytes: Int?
    var threads: Int?
    var idle_timeout_ms: Int64?
    var request_timeout_ms: Int64?
    var head_timeout_ms: Int64?
    var min_bytes_per_second: Int?
    var min_rate_grace_ms: Int64?
    var min_rate_window_ms: Int64?
    var max_connections: Int?
}

extension Duration {
    /// Whole milliseconds (rounded down).
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Whole nanoseconds (rounded down), for NIO's `TimeAmount`.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
