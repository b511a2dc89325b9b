import CLZMA
import TelemetryCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes an `.xz` file (one stream, CRC64 check), the format TelemetryEngine writes for the storage layout
/// (`spec/storage.md` §3: preset 0 by default, like the seed's `lzma -0`).
///
/// - Important: Not `Sendable`: owns a liblzma stream and a file descriptor. Call `finish()` to complete the
///   file; a writer dropped without `finish()` leaves an incomplete stream (readers report it as truncated).
public final class XZWriter {
    public let path: String
    /// Uncompressed bytes accepted so far.
    public private(set) var uncompressedBytes = 0
    /// Compressed bytes written so far.
    public private(set) var compressedBytes = 0

    private let fd: Int32
    private var stream = clzma_stream_init()
    private let output: UnsafeMutableRawBufferPointer
    private var finished = false

    /// Creates (or truncates) `path`; a symlink at `path` is refused (`O_NOFOLLOW`).
    /// - Parameter preset: 0…9 (xz's `-0` … `-9`).
    /// - Throws: `CompressionError.io` or `.codecSetup`.
    public init(path: String, preset: UInt32 = 0) throws {
        self.path = path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw CompressionError.io(path: path, operation: "open", errno: errno, message: String(cString: strerror(errno))) }
        self.fd = fd
        output = .allocate(byteCount: 256 * 1024, alignment: 16)
        let rc = lzma_easy_encoder(&stream, min(preset, 9), LZMA_CHECK_CRC64)
        guard rc == LZMA_OK else {
            // Every stored property is set: `deinit` frees `output` and closes `fd`.
            throw CompressionError.codecSetup(path: path, format: .xz, code: Int32(rc.rawValue), message: "lzma_easy_encoder")
        }
    }

    deinit {
        lzma_end(&stream)
        output.deallocate()
        close(fd)
    }

    /// Compresses and writes `bytes`.
    /// - Throws: `CompressionError.io` on a write error (disk full, ...).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(!finished, "XZWriter.write after finish()")
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        stream.next_in = base.assumingMemoryBound(to: UInt8.self)
        stream.avail_in = bytes.count
        try pump(LZMA_RUN)
        uncompressedBytes += bytes.count
    }

    /// Compresses and writes the UTF-8 bytes of `text`.
    public func write(_ text: String) throws {
        var copy = text
        try copy.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Ends the stream and flushes it; optionally `fsync`s the file.
    /// - Throws: `CompressionError.io`.
    public func finish(sync: Bool = false) throws {
        guard !finished else { return }
        stream.next_in = nil
        stream.avail_in = 0
        try pump(LZMA_FINISH)
        finished = true
        if sync && fsync(fd) != 0 {
            throw CompressionError.io(path: path, operation: "fsync", errno: errno, message: String(cString: strerror(errno)))
        }
    }

    private func pump(_ action: lzma_action) throws {
        while true {
            stream.next_out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
            stream.avail_out = output.count
            let rc = lzma_code(&stream, action)
            let produced = output.count - stream.avail_out
            if produced > 0 { try writeAll(output.baseAddress!, produced) }
            if rc == LZMA_STREAM_END { return }
            guard rc == LZMA_OK else {
                throw CompressionError.codecSetup(path: path, format: .xz, code: Int32(rc.rawValue), message: "lzma_code")
            }
            if action == LZMA_RUN && stream.avail_in == 0 { return }
        }
    }

    private func writeAll(_ base: UnsafeMutableRawPointer, _ count: Int) throws {
        do throws(FileOutput.Failure) { try FileOutput.writeAll(fd, base, count: count, name: path) } catch {
            throw CompressionError.io(path: path, operation: error.operation, errno: error.errno, message: error.reason)
        }
        compressedBytes += count
    }
}

/// CRC-64 (ECMA-182, as in the xz format) through liblzma: running checksums of files TelemetryEngine writes.
public enum CRC64 {
    /// The CRC-64 of `bytes` continued from `crc` (0 to start).
    public static func update(_ crc: UInt64, _ bytes: UnsafeRawBufferPointer) -> UInt64 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        return lzma_crc64(base.assumingMemoryBound(to: UInt8.self), bytes.count, crc)
    }
}
