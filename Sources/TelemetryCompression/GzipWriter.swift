import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a `.gz` file (one gzip member, RFC 1952; no file name, mtime 0, so the bytes depend only on the input),
/// streaming through zlib's deflate with a 256 KiB output buffer. Used by `telemetry export --format jsonl`.
///
/// - Important: Not `Sendable`: owns a zlib stream and a file descriptor. Call `finish()` to complete the file;
///   a writer dropped without it leaves a member without its trailer (readers report it as truncated).
public final class GzipWriter {
    public let path: String
    /// Uncompressed bytes accepted so far.
    public private(set) var uncompressedBytes = 0

    private let fd: Int32
    private var stream = z_stream()
    private let output: UnsafeMutableRawBufferPointer
    private var finished = false

    /// Creates (or truncates) `path`.
    /// - Parameter level: 0 (store) … 9 (best).
    /// - Throws: `CompressionError.io` or `.codecSetup`.
    public init(path: String, level: Int32 = 6) throws {
        self.path = path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CompressionError.io(path: path, operation: "open", errno: errno, message: String(cString: strerror(errno))) }
        self.fd = fd
        output = .allocate(byteCount: 256 * 1024, alignment: 16)
        let rc = czlib_deflateInit2(&stream, min(max(level, 0), 9), 15 + 16)
        guard rc == Z_OK else {
            throw CompressionError.codecSetup(path: path, format: .gzip, code: rc, message: "deflateInit2")
        }
    }

    deinit {
        deflateEnd(&stream)
        output.deallocate()
        close(fd)
    }

    /// Compresses and writes `bytes`.
    /// - Throws: `CompressionError.io` on a write error (disk full, …).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(!finished, "GzipWriter.write after finish()")
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var consumed = 0
        while consumed < bytes.count {
            let offered = min(bytes.count - consumed, Int(UInt32.max))
            stream.next_in = UnsafeMutablePointer(mutating: (base + consumed).assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(offered)
            try pump(Z_NO_FLUSH)
            consumed += offered
        }
        uncompressedBytes += bytes.count
    }

    /// Compresses and writes the UTF-8 bytes of `text`.
    public func write(_ text: String) throws {
        var copy = text
        try copy.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Ends the member and flushes it; `fsync`s the file when `sync`.
    /// - Throws: `CompressionError.io`.
    public func finish(sync: Bool = false) throws {
        guard !finished else { return }
        stream.next_in = nil
        stream.avail_in = 0
        try pump(Z_FINISH)
        finished = true
        if sync && fsync(fd) != 0 {
            throw CompressionError.io(path: path, operation: "fsync", errno: errno, message: String(cString: strerror(errno)))
        }
    }

    /// Runs deflate until it has taken all input (`Z_NO_FLUSH`) or ended the stream (`Z_FINISH`), writing output.
    private func pump(_ flush: Int32) throws {
        while true {
            stream.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(output.count)
            let rc = deflate(&stream, flush)
            // Z_BUF_ERROR only means no progress was possible; with output room that happens with no input left.
            precondition(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR, "deflate failed (\(rc))")
            let produced = output.count - Int(stream.avail_out)
            var written = 0
            while written < produced {
                let n = Glibc.write(fd, output.baseAddress! + written, produced - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw CompressionError.io(path: path, operation: "write", errno: errno, message: String(cString: strerror(errno)))
                }
                written += n
            }
            if flush == Z_FINISH { if rc == Z_STREAM_END { return } } else if stream.avail_in == 0 && stream.avail_out != 0 { return }
        }
    }
}
