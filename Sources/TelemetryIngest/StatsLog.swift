import Foundation

/// The per-request stats log (`spec/raw-log.md` §7.2): one JSON object and `\n` per response, keys in the seed's
/// order (`url`, `duration_ms`, `code`, `size`, `level`, `message`, `timestamp`).
///
/// Unlike the seed (which wrote synchronously), lines are buffered and appended by a background thread every
/// 100 ms, so a slow disk never blocks an event loop; when more than `capacityBytes` are waiting, new lines are
/// dropped and counted (`telemetry_ingest_stats_lines_dropped_total`).
///
/// - Important: `@unchecked Sendable`: `buffer`, `stopping` and `finished` are guarded by `condition`; the file
///   descriptor is used by the flushing thread only (and by `close()` after it stopped).
final class StatsLog: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let capacityBytes: Int
    private let metrics: IngestMetrics
    private let condition = NSCondition()
    private var buffer: [UInt8] = []
    private var stopping = false
    private var finished = false
    private var thread: Thread?

    /// Opens (creating, appending to) `path`.
    /// - Throws: `IngestError.io` when the file cannot be opened.
    init(path: String, metrics: IngestMetrics, capacityBytes: Int = 8 << 20) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IngestError.current(path, "open") }
        self.path = path
        self.fd = fd
        self.capacityBytes = capacityBytes
        self.metrics = metrics
        buffer.reserveCapacity(64 * 1024)
    }

    /// Starts the flushing thread.
    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "telemetry-stats"
        self.thread = thread
        thread.start()
    }

    /// Adds one line. `durationNanos` is written as fractional milliseconds; `timestampMs` is wall-clock ms since
    /// the epoch (UTC).
    func append(url: String, durationNanos: UInt64, code: Int, size: Int, message: String, timestampMs: UInt64) {
        var line = "{\"url\":"
        appendJSONString(url, to: &line)
        line += ",\"duration_ms\":\(formatDuration(nanoseconds: durationNanos)),\"code\":\(code),\"size\":\(size),\"level\":\"info\",\"message\":"
        appendJSONString(message, to: &line)
        line += ",\"timestamp\":\"\(iso8601(milliseconds: timestampMs))\"}\n"
        condition.lock()
        if buffer.count + line.utf8.count > capacityBytes {
            condition.unlock()
            metrics.droppedStatsLines(1)
            return
        }
        buffer.append(contentsOf: line.utf8)
        condition.unlock()
    }

    /// Writes what is buffered and closes the file. Blocks until done.
    func close() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while thread != nil && !finished { condition.wait() }
        condition.unlock()
        if thread == nil { flushOnce() }
        _ = Foundation.close(fd)
    }

    private func run() {
        while true {
            condition.lock()
            if !stopping { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.1)) }
            let stop = stopping
            condition.unlock()
            flushOnce()
            if stop { break }
        }
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    private func flushOnce() {
        condition.lock()
        var out: [UInt8] = []
        swap(&out, &buffer)
        buffer.reserveCapacity(64 * 1024)
        condition.unlock()
        out.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(fd, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { break }   // the stats log is best effort: never stop serving for it
                offset += written
            }
        }
    }
}

/// Appends `text` as a JSON string literal (quotes, backslash, control characters escaped).
func appendJSONString(_ text: String, to out: inout String) {
    out += "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    out += "\""
}

/// Milliseconds with up to 6 decimals, like Node's high-resolution timer output (`0.547324`).
private func formatDuration(nanoseconds: UInt64) -> String {
    let whole = nanoseconds / 1_000_000, fraction = nanoseconds % 1_000_000
    if fraction == 0 { return "\(whole)" }
    var digits = String(fraction)
    digits = String(repeating: "0", count: 6 - digits.count) + digits
    while digits.hasSuffix("0") { digits.removeLast() }
    return "\(whole).\(digits)"
}

/// `2013-09-10T20:43:17.217Z` for `milliseconds` since the epoch (UTC).
func iso8601(milliseconds: UInt64) -> String {
    var seconds = time_t(milliseconds / 1000)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func pad(_ value: Int32, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
    return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
        + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds % 1000), 3))Z"
}
