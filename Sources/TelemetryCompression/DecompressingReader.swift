import CLZMA
import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Streams the decompressed bytes of one file, whatever its compression (`CompressionFormat`,
/// detected from the magic bytes). Reads the file in 256 KiB blocks; never holds the whole file.
///
/// - Important: Not `Sendable`: owns a file descriptor and a liblzma or zlib stream. Use it on one thread.
public final class DecompressingReader {
    public let path: String
    public private(set) var format: CompressionFormat = .plain
    /// Bytes of the file consumed so far.
    public private(set) var compressedOffset = 0
    /// Decompressed bytes produced so far.
    public private(set) var uncompressedOffset = 0
    /// Size of the file when opened.
    public let fileSize: Int
    /// CRC-64 (ECMA-182, as xz uses) of the file bytes read so far; of the whole file after `finishHashing()`.
    public private(set) var contentCRC64: UInt64 = 0

    private let fd: Int32
    private var input: UnsafeMutableRawBufferPointer
    private var inputStart = 0
    private var inputEnd = 0
    private var inputEOF = false
    private var finished = false
    private var lzma = clzma_stream_init()
    private var zlib = z_stream()
    private static let inputBlockBytes = 256 * 1024

    /// Opens `path` and sets up the decoder its first bytes call for.
    /// - Throws: `CompressionError.io` when the file cannot be opened or read; `.codecSetup` when the decoder
    ///   cannot be initialised.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CompressionError.io(path: path, operation: "open", errno: errno, message: String(cString: strerror(errno))) }
        self.fd = fd
        var st = stat()
        fileSize = fstat(fd, &st) == 0 ? Int(st.st_size) : 0
        input = .allocate(byteCount: Self.inputBlockBytes, alignment: 16)
        // Every stored property is set now, so a throw below runs `deinit`, which frees `input` and closes `fd`
        // (freeing them here as well was a double free, e.g. for a directory: read fails with EISDIR).
        try fillInput()
        let suffix = path.lastIndex(of: ".").map { String(path[$0...]) }
        format = CompressionFormat.detect(prefix: UnsafeRawBufferPointer(rebasing: input[inputStart..<inputEnd]), suffix: suffix)
        try setUpDecoder()
    }

    deinit {
        switch format {
        case .xz, .lzmaAlone: lzma_end(&lzma)
        case .gzip: inflateEnd(&zlib)
        case .plain: break
        }
        input.deallocate()
        close(fd)
    }

    private func setUpDecoder() throws {
        switch format {
        case .xz:
            let rc = lzma_stream_decoder(&lzma, UInt64.max, CLZMA_CONCATENATED)
            guard rc == LZMA_OK else { throw CompressionError.codecSetup(path: path, format: format, code: Int32(rc.rawValue), message: lzmaMessage(rc)) }
        case .lzmaAlone:
            let rc = lzma_alone_decoder(&lzma, UInt64.max)
            guard rc == LZMA_OK else { throw CompressionError.codecSetup(path: path, format: format, code: Int32(rc.rawValue), message: lzmaMessage(rc)) }
        case .gzip:
            let rc = czlib_inflateInit2(&zlib, 15 + 16)
            guard rc == Z_OK else { throw CompressionError.codecSetup(path: path, format: format, code: rc, message: "inflateInit2") }
        case .plain: break
        }
    }

    /// Refills the input block when it is empty. Sets `inputEOF` at end of file.
    private func fillInput() throws {
        guard inputStart == inputEnd, !inputEOF else { return }
        inputStart = 0; inputEnd = 0
        while true {
            let n = Glibc.read(fd, input.baseAddress, input.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw CompressionError.io(path: path, operation: "read", errno: errno, message: String(cString: strerror(errno)))
            }
            if n == 0 { inputEOF = true }
            inputEnd = n
            if n > 0 { contentCRC64 = lzma_crc64(input.baseAddress!.assumingMemoryBound(to: UInt8.self), n, contentCRC64) }
            return
        }
    }

    /// Reads the rest of the file (without decoding) so that `contentCRC64` covers all of it; used after
    /// damage stopped decoding early.
    /// - Throws: `CompressionError.io`.
    public func finishHashing() throws {
        inputStart = inputEnd
        while !inputEOF {
            try fillInput()
            inputStart = inputEnd
        }
    }

    /// CRC-64 of a whole file, read in 256 KiB blocks, without decoding it.
    /// - Throws: `CompressionError.io`.
    public static func crc64(ofFile path: String) throws -> UInt64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CompressionError.io(path: path, operation: "open", errno: errno, message: String(cString: strerror(errno))) }
        defer { close(fd) }
        let block = UnsafeMutableRawPointer.allocate(byteCount: inputBlockBytes, alignment: 16)
        defer { block.deallocate() }
        var crc: UInt64 = 0
        while true {
            let n = Glibc.read(fd, block, inputBlockBytes)
            if n < 0 {
                if errno == EINTR { continue }
                throw CompressionError.io(path: path, operation: "read", errno: errno, message: String(cString: strerror(errno)))
            }
            if n == 0 { return crc }
            crc = lzma_crc64(block.assumingMemoryBound(to: UInt8.self), n, crc)
        }
    }

    /// Fills `buffer` with up to `buffer.count` decompressed bytes.
    /// - Returns: the number of bytes written; 0 only at the clean end of the data.
    /// - Throws: `CompressionError.truncated` / `.corrupt` at damage (bytes returned before stay valid),
    ///   `.io` on a read error.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if let pendingError { self.pendingError = nil; throw pendingError }
        guard !finished, buffer.count > 0, let out = buffer.baseAddress else { return 0 }
        switch format {
        case .plain:
            try fillInput()
            let n = min(buffer.count, inputEnd - inputStart)
            if n == 0 { finished = true; return 0 }
            out.copyMemory(from: input.baseAddress! + inputStart, byteCount: n)
            inputStart += n; compressedOffset += n; uncompressedOffset += n
            return n
        case .xz, .lzmaAlone:
            return try readLZMA(out, buffer.count)
        case .gzip:
            return try readGzip(out, buffer.count)
        }
    }

    private func readLZMA(_ out: UnsafeMutableRawPointer, _ capacity: Int) throws -> Int {
        lzma.next_out = out.assumingMemoryBound(to: UInt8.self)
        lzma.avail_out = capacity
        while lzma.avail_out > 0 {
            try fillInput()
            let available = inputEnd - inputStart
            lzma.next_in = UnsafePointer(input.baseAddress!.assumingMemoryBound(to: UInt8.self) + inputStart)
            lzma.avail_in = available
            let rc = lzma_code(&lzma, inputEOF ? LZMA_FINISH : LZMA_RUN)
            let consumed = available - lzma.avail_in
            inputStart += consumed; compressedOffset += consumed
            let produced = capacity - lzma.avail_out
            switch rc {
            case LZMA_OK:
                if inputEOF && consumed == 0 && produced == 0 {
                    throw CompressionError.truncated(path: path, format: format, compressedOffset: compressedOffset, uncompressedOffset: uncompressedOffset)
                }
                continue
            case LZMA_STREAM_END:
                finished = true
                uncompressedOffset += produced
                if format == .lzmaAlone {
                    // LZMA-alone holds one stream; anything after it is not ours to decode.
                    try fillInput()
                    if inputEnd > inputStart {
                        let error = CompressionError.corrupt(path: path, format: format, compressedOffset: compressedOffset,
                                                             uncompressedOffset: uncompressedOffset, code: 0,
                                                             message: "\(inputEnd - inputStart)+ bytes of trailing data after the LZMA stream")
                        // The stream's own bytes are good: hand them back first; the next call reports the damage.
                        if produced > 0 { pendingError = error; return produced }
                        throw error
                    }
                }
                return produced
            case LZMA_BUF_ERROR:
                uncompressedOffset += produced
                if produced > 0 { return produced }
                throw CompressionError.truncated(path: path, format: format, compressedOffset: compressedOffset, uncompressedOffset: uncompressedOffset)
            default:
                // Hand back what decoded cleanly first; the next call reports the damage.
                if produced > 0 {
                    uncompressedOffset += produced
                    pendingError = CompressionError.corrupt(path: path, format: format, compressedOffset: compressedOffset,
                                                            uncompressedOffset: uncompressedOffset, code: Int32(rc.rawValue), message: lzmaMessage(rc))
                    finished = true
                    return produced
                }
                throw CompressionError.corrupt(path: path, format: format, compressedOffset: compressedOffset,
                                               uncompressedOffset: uncompressedOffset, code: Int32(rc.rawValue), message: lzmaMessage(rc))
            }
        }
        uncompressedOffset += capacity
        return capacity
    }

    /// Damage found while returning the last good bytes; the next `read` throws it.
    private var pendingError: CompressionError?

    private func readGzip(_ out: UnsafeMutableRawPointer, _ capacity: Int) throws -> Int {
        zlib.next_out = out.assumingMemoryBound(to: Bytef.self)
        zlib.avail_out = uInt(capacity)
        while zlib.avail_out > 0 {
            try fillInput()
            let available = inputEnd - inputStart
            if available == 0 && inputEOF {
                let produced = capacity - Int(zlib.avail_out)
                uncompressedOffset += produced
                if memberComplete {
                    finished = true
                    return produced
                }
                if produced > 0 { return produced }
                throw CompressionError.truncated(path: path, format: format, compressedOffset: compressedOffset, uncompressedOffset: uncompressedOffset)
            }
            if memberComplete {
                // Another gzip member follows (multi-member file): start it.
                inflateReset(&zlib)
                memberComplete = false
            }
            zlib.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self) + inputStart)
            zlib.avail_in = uInt(available)
            let rc = inflate(&zlib, Z_NO_FLUSH)
            let consumed = available - Int(zlib.avail_in)
            inputStart += consumed; compressedOffset += consumed
            switch rc {
            case Z_OK: continue
            case Z_STREAM_END: memberComplete = true; continue
            case Z_BUF_ERROR: continue   // needs more input; the EOF check above decides
            default:
                let produced = capacity - Int(zlib.avail_out)
                uncompressedOffset += produced
                let message = zlib.msg.map { String(cString: $0) } ?? "inflate error"
                let error = CompressionError.corrupt(path: path, format: format, compressedOffset: compressedOffset,
                                                     uncompressedOffset: uncompressedOffset, code: rc, message: message)
                finished = true
                if produced > 0 { pendingError = error; return produced }
                throw error
            }
        }
        uncompressedOffset += capacity
        return capacity
    }

    /// True between the end of one gzip member and the start of the next.
    private var memberComplete = false

    private func lzmaMessage(_ rc: lzma_ret) -> String {
        switch rc {
        case LZMA_MEM_ERROR: "out of memory"
        case LZMA_MEMLIMIT_ERROR: "memory limit reached"
        case LZMA_FORMAT_ERROR: "file format not recognized"
        case LZMA_OPTIONS_ERROR: "unsupported compression options"
        case LZMA_DATA_ERROR: "compressed data is corrupt"
        case LZMA_BUF_ERROR: "unexpected end of input"
        case LZMA_UNSUPPORTED_CHECK: "unsupported integrity check"
        case LZMA_PROG_ERROR: "programming error"
        default: "liblzma error \(rc.rawValue)"
        }
    }
}
