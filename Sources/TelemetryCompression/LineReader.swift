#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One record line of a storage-format file, valid only inside the `LineReader.forEachLine` callback.
public struct Line {
    /// 1-based line number in the decompressed text.
    public let number: Int
    /// Byte offset of the line's first byte in the decompressed text.
    public let offset: Int
    /// The line without its terminator (and without a trailing `\r`). At least `LineReader.padding` readable
    /// bytes follow `bytes.count` (simdjson's padding). Empty when `isTooLong`.
    public let bytes: UnsafeRawBufferPointer
    /// Length of the line in bytes (also when `isTooLong`, as far as it was read).
    public let length: Int
    /// The line exceeded the reader's `maxLineBytes`; its bytes were skipped, not buffered.
    public let isTooLong: Bool

    /// A line from elsewhere (e.g. a converted raw-log record); `bytes` must have `LineReader.padding` readable
    /// bytes after its end when it is handed to code that parses padded input.
    public init(number: Int, offset: Int, bytes: UnsafeRawBufferPointer, length: Int, isTooLong: Bool) {
        self.number = number
        self.offset = offset
        self.bytes = bytes
        self.length = length
        self.isTooLong = isTooLong
    }
}

/// Splits a decompressed stream into lines (`spec/storage.md` §1: LF-terminated; a NUL byte also ends a
/// record, conformance ruling 2; a trailing `\r` is stripped; empty lines are skipped).
///
/// Memory: one buffer of at most `maxLineBytes` + 1 MiB; an over-long line is skipped as it streams by.
public struct LineReader {
    /// Readable bytes guaranteed after each line's end (simdjson's `SIMDJSON_PADDING`).
    public static let padding = 64
    /// Default longest line: 16 MiB.
    public static let defaultMaxLineBytes = 16 << 20

    public let source: DecompressingReader
    public let maxLineBytes: Int

    public init(source: DecompressingReader, maxLineBytes: Int = LineReader.defaultMaxLineBytes) {
        self.source = source
        self.maxLineBytes = max(1, maxLineBytes)
    }

    /// Calls `body` for each line in order.
    /// - Throws: what `body` throws, or the source's `CompressionError` at damage. Every complete line before
    ///   the damage has been passed to `body` first; an unterminated fragment cut off by the damage is not.
    ///   At a clean end of data an unterminated last line is delivered.
    /// - Returns: the number of lines delivered (including over-long ones).
    @discardableResult
    public func forEachLine(_ body: (Line) throws -> Void) throws -> Int {
        let chunk = 1 << 20
        var capacity = chunk
        var buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity + Self.padding, alignment: 64)
        defer { buffer.deallocate() }
        var start = 0          // first byte of the current line in `buffer`
        var end = 0            // end of valid data
        var scan = 0           // where to continue looking for a terminator
        var discarded = 0      // decompressed bytes dropped before buffer[0]
        var lineNumber = 0
        var delivered = 0
        var skipping = false   // inside an over-long line
        var skippedLength = 0
        var skippedOffset = 0
        var eof = false

        func deliver(_ from: Int, _ to: Int) throws {
            lineNumber += 1
            var stop = to
            if stop > from && buffer.load(fromByteOffset: stop - 1, as: UInt8.self) == 0x0D { stop -= 1 }
            if stop == from { return }
            delivered += 1
            // A line can be longer than `maxLineBytes` and still fit in the buffer (it holds up to 1 MiB more).
            let tooLong = stop - from > maxLineBytes
            try body(Line(number: lineNumber, offset: discarded + from,
                          bytes: UnsafeRawBufferPointer(start: buffer + from, count: tooLong ? 0 : stop - from),
                          length: stop - from, isTooLong: tooLong))
        }

        while true {
            // Find the next terminator in [scan, end).
            var terminator = -1
            if scan < end {
                let n = end - scan
                let nl = memchr(buffer + scan, 0x0A, n)
                let searchEnd = nl.map { $0 - (buffer + scan) } ?? n
                let nul = searchEnd > 0 ? memchr(buffer + scan, 0, searchEnd) : nil
                if let nul { terminator = nul - buffer } else if let nl { terminator = nl - buffer }
            }
            if terminator >= 0 {
                if skipping {
                    skippedLength += terminator - start
                    lineNumber += 1
                    delivered += 1
                    try body(Line(number: lineNumber, offset: skippedOffset, bytes: UnsafeRawBufferPointer(start: buffer, count: 0),
                                  length: skippedLength, isTooLong: true))
                    skipping = false
                } else {
                    try deliver(start, terminator)
                }
                start = terminator + 1
                scan = start
                continue
            }
            if eof {
                if skipping {
                    lineNumber += 1
                    delivered += 1
                    try body(Line(number: lineNumber, offset: skippedOffset, bytes: UnsafeRawBufferPointer(start: buffer, count: 0),
                                  length: skippedLength + (end - start), isTooLong: true))
                } else if end > start {
                    try deliver(start, end)
                }
                return delivered
            }
            // No terminator in the buffer: make room, then read more.
            if skipping {
                skippedLength += end - start
                discarded += end
                start = 0; end = 0; scan = 0
            } else if end - start > maxLineBytes + 1 {   // + 1: a line of exactly maxLineBytes may still have its \r
                skipping = true
                skippedOffset = discarded + start
                skippedLength = end - start
                discarded += end
                start = 0; end = 0; scan = 0
            } else {
                if start > 0 {
                    memmove(buffer, buffer + start, end - start)
                    discarded += start
                    end -= start; scan -= start; start = 0
                }
                if capacity - end < chunk / 4 {
                    let newCapacity = min(max(capacity * 2, end + chunk), maxLineBytes + chunk)
                    if newCapacity > capacity {
                        let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity + Self.padding, alignment: 64)
                        grown.copyMemory(from: buffer, byteCount: end)
                        buffer.deallocate()
                        buffer = grown
                        capacity = newCapacity
                    }
                }
            }
            scan = end
            let room = capacity - end
            let n: Int
            do {
                n = try source.read(into: UnsafeMutableRawBufferPointer(start: buffer + end, count: room))
            } catch {
                // Complete lines already in the buffer were delivered by the loop above (scan == end).
                throw error
            }
            if n == 0 { eof = true } else { end += n }
        }
    }
}
