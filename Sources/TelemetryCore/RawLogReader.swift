#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A problem a tolerant `RawLogReader` stepped over. The caller counts them (`spec/payloads.md` §10.4): rejected
/// preambles and truncated records are `corrupted_data`; skipped bytes are totalled per file.
public enum RawLogEvent: Sendable, Equatable {
    /// `count` bytes starting at file offset `offset` were skipped while looking for the next `0x1E`
    /// (`spec/raw-log.md` §5.2). A run that starts one byte after a rejected separator is split at the end the
    /// rejected preamble declared: the first event covers the rest of the rejected record (those bytes belong to a
    /// `corrupted_data` record, not to the next record's `skipped_bytes` warning), a second one any junk after it.
    /// Both count towards the file's skipped bytes.
    case skippedBytes(offset: Int, count: Int)
    /// The preamble whose separator is at `offset` declares a length over the reader's `RawLogLimits`; the reader
    /// resumed one byte after the separator (§5.3, conformance README ruling 3).
    case rejectedPreamble(offset: Int, reason: RawLogRejection)
    /// The file ends inside the record (or preamble) whose separator is at `offset`. Always the last item; its
    /// bytes are not counted as skipped.
    case truncatedRecord(offset: Int)
}

/// What `RawLogReader.next()` produces, in file order.
public enum RawLogItem: Sendable, Equatable {
    case record(RawRecord)
    case event(RawLogEvent)
}

/// How a `RawLogReader` treats damage.
public enum RawLogReadMode: Sendable, Equatable {
    /// Resynchronise and report events (`spec/raw-log.md` §5.2 with the length checks of §5.3): what every pipeline
    /// uses.
    case tolerant
    /// Throw `RawLogError` at the first byte that is not where a record should start, rejected preamble or
    /// truncated record (§5.1's strict mode, used for version detection).
    case strict
}

/// Running totals of one reader. `skippedBytes` includes `skippedBytesInRejectedRecords`.
public struct RawLogCounts: Sendable, Equatable {
    /// Records returned.
    public var records = 0
    /// All bytes skipped while resynchronising (what the generator's `expected_skipped_bytes` totals).
    public var skippedBytes = 0
    /// The part of `skippedBytes` that lies inside the declared extent of a rejected preamble.
    public var skippedBytesInRejectedRecords = 0
    /// Preambles rejected for over-limit lengths.
    public var rejectedPreambles = 0
    /// Records cut short by the end of the file (0 or 1).
    public var truncatedRecords = 0

    public init() {}
}

/// Streams the records of one raw submission log file (`spec/raw-log.md` §1, §5), tolerant by default:
/// junk between records is skipped up to the next `0x1E` (§5.2), a preamble declaring a length over `limits` is
/// rejected and scanning resumes one byte after its separator (§5.3), a record cut short by the end of the file
/// ends the stream. Each of these is reported as a `RawLogEvent`, in file order between the records.
///
/// Reads the file in 256 KiB blocks (the buffer grows only to hold one record when the limits allow records larger
/// than that); never holds the whole file. Each record's IP, path and data are copied once out of the block.
///
/// - Important: Not `Sendable`: owns a file descriptor. Use it on one thread.
public final class RawLogReader {
    /// The file being read, as given.
    public let path: String
    /// The framing in use, given or detected (`detectVersion(path:limits:)`).
    public let version: RawLogVersion
    public let limits: RawLogLimits
    public let mode: RawLogReadMode
    /// Size of the file when opened, in bytes.
    public let fileSize: Int
    /// Totals so far.
    public private(set) var counts = RawLogCounts()
    /// Junk bytes skipped right before the last record `next()` returned, not counting bytes inside a rejected
    /// record's declared extent: > 0 means that record carries the `skipped_bytes` warning (`spec/payloads.md`
    /// §10.4). Set when `next()` returns the record.
    public private(set) var junkBytesBeforeLastRecord = 0

    private static let blockBytes = 256 * 1024

    private let fd: Int32
    private var buffer: UnsafeMutableRawBufferPointer
    /// Unconsumed bytes are `buffer[start..<end]`; `buffer[0]` is at file offset `bufferFileOffset`.
    private var start = 0
    private var end = 0
    private var bufferFileOffset = 0
    private var endOfFile = false
    private var finished = false
    /// Items produced by one step and not yet returned (at most three: skipped runs, then a record or event).
    private var queue: [RawLogItem] = []
    private var queueHead = 0
    /// The skip run being accumulated (`runCount == 0`: none).
    private var runStart = 0
    private var runCount = 0
    /// File offset where the last rejected record would have ended, by its preamble.
    private var rejectedExtentEnd = 0
    /// Junk (outside rejected extents) skipped right before the separator being processed.
    private var pendingJunk = 0
    /// The junk count belonging to the record waiting in `queue`.
    private var junkForQueuedRecord = 0

    /// Opens `path` for reading with `version`, or with the version `detectVersion(path:limits:)` picks when nil.
    /// - Throws: `RawLogError.io` when the file cannot be opened or read; `RawLogError.undetectableVersion` when
    ///   `version` is nil and detection fails.
    public init(path: String, version: RawLogVersion? = nil, limits: RawLogLimits = .default,
                mode: RawLogReadMode = .tolerant) throws {
        let chosen = try version ?? Self.detectVersion(path: path, limits: limits)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Self.ioError(path, "open") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let error = Self.ioError(path, "fstat")
            close(fd)
            throw error
        }
        self.path = path
        self.version = chosen
        self.limits = limits
        self.mode = mode
        self.fd = fd
        self.fileSize = Int(st.st_size)
        buffer = .allocate(byteCount: Self.blockBytes, alignment: 16)
        queue.reserveCapacity(4)
    }

    deinit {
        buffer.deallocate()
        close(fd)
    }

    // MARK: - Reading

    /// The next record or event, in file order; nil at the end of the file (and after a `truncatedRecord` event or
    /// a strict-mode error).
    /// - Throws: `RawLogError.io` on a read error; in `.strict` mode `RawLogError.unexpectedByte`,
    ///   `.rejectedPreamble` or `.truncatedRecord` at the first damage.
    /// - Complexity: amortised O(bytes consumed); scans junk with `memchr`.
    public func next() throws -> RawLogItem? {
        while true {
            if queueHead < queue.count {
                let item = queue[queueHead]
                queueHead += 1
                if queueHead == queue.count { queue.removeAll(keepingCapacity: true); queueHead = 0 }
                if case .record = item { junkBytesBeforeLastRecord = junkForQueuedRecord }
                return item
            }
            if finished { return nil }
            try step()
        }
    }

    /// Calls `record` for each record and `event` for each event, in file order, until the end of the file.
    /// - Throws: what `next()` throws, and what the closures throw (reading stops there).
    public func forEach(record: (RawRecord) throws -> Void, event: (RawLogEvent) throws -> Void = { _ in }) throws {
        while let item = try next() {
            switch item {
            case let .record(r): try record(r)
            case let .event(e): try event(e)
            }
        }
    }

    /// Consumes input until at least one item is queued or the file is finished.
    private func step() throws {
        let separator = rawLogSeparator
        while true {
            if start == end {
                bufferFileOffset += end
                start = 0; end = 0
                if try endOfFile || fillBuffer() == 0 {
                    flushRun()
                    finished = true
                    return
                }
            }
            let base = bufferBase
            if base.load(fromByteOffset: start, as: UInt8.self) != separator {
                let offset = bufferFileOffset + start
                if mode == .strict {
                    finished = true
                    throw RawLogError.unexpectedByte(path: path, offset: offset)
                }
                let stop: Int
                if let found = memchr(base + start, Int32(separator), end - start) {
                    stop = UnsafeRawPointer(found) - UnsafeRawPointer(base)
                } else {
                    stop = end
                }
                if runCount == 0 { runStart = offset }
                runCount += stop - start
                start = stop
                continue
            }

            let recordOffset = bufferFileOffset + start
            flushRun()
            let preambleBytes = version.preambleBytes
            guard try ensureAvailable(preambleBytes) else {
                try truncated(at: recordOffset, expectedBytes: preambleBytes)
                return
            }
            let p = UnsafeRawPointer(bufferBase + start)
            let ipBytes: Int
            let fields: UnsafeRawPointer
            switch version {
            case .v1: ipBytes = 0; fields = p + 1
            case .v2: ipBytes = Int(p.load(fromByteOffset: 1, as: UInt8.self)); fields = p + 2
            }
            let pathBytes = Int(UInt16(littleEndian: fields.loadUnaligned(as: UInt16.self)))
            let dataBytes = Int(UInt32(littleEndian: fields.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
            let timestamp = UInt64(littleEndian: fields.loadUnaligned(fromByteOffset: 6, as: UInt64.self))
            let recordBytes = preambleBytes + ipBytes + pathBytes + dataBytes

            if let reason = limits.rejection(ipBytes: ipBytes, pathBytes: pathBytes, dataBytes: dataBytes) {
                if mode == .strict {
                    finished = true
                    throw RawLogError.rejectedPreamble(path: path, offset: recordOffset, reason: reason)
                }
                counts.rejectedPreambles += 1
                rejectedExtentEnd = recordOffset + recordBytes
                pendingJunk = 0
                start += 1
                queue.append(.event(.rejectedPreamble(offset: recordOffset, reason: reason)))
                return
            }

            guard try ensureAvailable(recordBytes) else {
                try truncated(at: recordOffset, expectedBytes: recordBytes)
                return
            }
            var cursor = UnsafeRawPointer(bufferBase + start + preambleBytes)
            var ip: [UInt8]?
            if version == .v2 {
                ip = Array(UnsafeRawBufferPointer(start: cursor, count: ipBytes))
                cursor += ipBytes
            }
            let pathField = Array(UnsafeRawBufferPointer(start: cursor, count: pathBytes))
            cursor += pathBytes
            let data = Array(UnsafeRawBufferPointer(start: cursor, count: dataBytes))
            start += recordBytes
            counts.records += 1
            junkForQueuedRecord = pendingJunk
            pendingJunk = 0
            queue.append(.record(RawRecord(version: version, timestamp: timestamp, path: pathField, ip: ip, data: data,
                                           offset: recordOffset)))
            return
        }
    }

    /// The buffer's storage (always allocated, at least one block).
    private var bufferBase: UnsafeMutableRawPointer {
        guard let base = buffer.baseAddress else { preconditionFailure("RawLogReader buffer has no storage") }
        return base
    }

    /// Queues the skip run that ended at a separator or at the end of the file, split at `rejectedExtentEnd`.
    private func flushRun() {
        guard runCount > 0 else { pendingJunk = 0; return }
        let inRejected = max(0, min(runStart + runCount, rejectedExtentEnd) - runStart)
        if inRejected > 0 { queue.append(.event(.skippedBytes(offset: runStart, count: inRejected))) }
        let junk = runCount - inRejected
        if junk > 0 { queue.append(.event(.skippedBytes(offset: runStart + inRejected, count: junk))) }
        counts.skippedBytes += runCount
        counts.skippedBytesInRejectedRecords += inRejected
        pendingJunk = junk
        runCount = 0
    }

    /// The file ended inside the record at `offset`: an event (tolerant) or an error (strict); reading stops.
    private func truncated(at offset: Int, expectedBytes: Int) throws {
        let available = end - start
        finished = true
        start = end
        if mode == .strict {
            throw RawLogError.truncatedRecord(path: path, offset: offset, expectedBytes: expectedBytes, availableBytes: available)
        }
        counts.truncatedRecords += 1
        queue.append(.event(.truncatedRecord(offset: offset)))
    }

    /// Makes `count` bytes available from `start`, moving, growing and refilling the buffer as needed.
    /// - Returns: false when the file ends first.
    private func ensureAvailable(_ count: Int) throws -> Bool {
        while end - start < count {
            if endOfFile { return false }
            if buffer.count - start < count {
                let keep = end - start
                if buffer.count < count {
                    let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: max(buffer.count * 2, count), alignment: 16)
                    if keep > 0, let from = buffer.baseAddress, let to = grown.baseAddress {
                        to.copyMemory(from: from + start, byteCount: keep)
                    }
                    buffer.deallocate()
                    buffer = grown
                } else if keep > 0, let base = buffer.baseAddress {
                    memmove(base, base + start, keep)
                }
                bufferFileOffset += start
                start = 0
                end = keep
            }
            if try fillBuffer() == 0 { return false }
        }
        return true
    }

    /// Reads into the free space after `end`. Returns the byte count; 0 sets `endOfFile`.
    private func fillBuffer() throws -> Int {
        guard let base = buffer.baseAddress, end < buffer.count else { return 0 }
        while true {
            let n = read(fd, base + end, buffer.count - end)
            if n < 0 {
                if errno == EINTR { continue }
                finished = true
                throw Self.ioError(path, "read")
            }
            if n == 0 { endOfFile = true }
            end += n
            return n
        }
    }

    private static func ioError(_ path: String, _ operation: String) -> RawLogError {
        let code = errno
        return .io(path: path, operation: operation, errno: code, message: String(cString: strerror(code)))
    }

    // MARK: - Version detection

    /// Picks the framing of `path` by content (`spec/raw-log.md` §5.1, TelemetryEngine's rule): reads the start of
    /// the file in strict mode as v1 and as v2, up to 3 records each, and picks the version that reads more records
    /// cleanly; on a tie the name's `.v1.`/`.v2.` tag decides (`RawLogVersion.nameHint(forPath:)`).
    /// - Throws: `RawLogError.undetectableVersion` on a tie without a tag (including a file neither reads a record
    ///   of, such as an empty untagged file); `RawLogError.io` when the file cannot be read.
    /// - Complexity: reads at most 3 records' worth of bytes per version (about 650 KB with the default limits).
    public static func detectVersion(path: String, limits: RawLogLimits = .default) throws -> RawLogVersion {
        let v1 = try cleanRecordCount(path: path, version: .v1, limits: limits)
        let v2 = try cleanRecordCount(path: path, version: .v2, limits: limits)
        if v1 != v2 { return v1 > v2 ? .v1 : .v2 }
        if let hint = RawLogVersion.nameHint(forPath: path) { return hint }
        throw RawLogError.undetectableVersion(path: path)
    }

    /// Records read cleanly from the start of the file in strict mode with `version`, at most `maximum`.
    static func cleanRecordCount(path: String, version: RawLogVersion, limits: RawLogLimits, maximum: Int = 3) throws -> Int {
        let reader = try RawLogReader(path: path, version: version, limits: limits, mode: .strict)
        var count = 0
        do {
            while count < maximum, case .record? = try reader.next() { count += 1 }
        } catch let error as RawLogError {
            if case .io = error { throw error }
        }
        return count
    }
}
