import CZlib

/// In-memory gzip (RFC 1952) for raw-log bodies (`spec/raw-log.md` §3: clients may gzip the body; detection is by
/// the magic bytes) and for tests and tools. Files are read with `DecompressingReader` instead.
public enum Gzip {
    /// Bytes of output produced per `inflate` call into the scratch block.
    private static let scratchBytes = 64 * 1024

    /// True when `bytes` has at least two bytes and starts with the gzip magic `1F 8B` (`spec/raw-log.md` §3, the
    /// Python reader's test). Nothing else is checked.
    public static func isGzip<Bytes: Collection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        var iterator = bytes.makeIterator()
        guard let first = iterator.next(), let second = iterator.next() else { return false }
        return first == 0x1F && second == 0x8B
    }

    /// Inflates gzip data: every member of a multi-member stream in turn (zero bytes between or after members are
    /// skipped, as gzip(1) and Python's `gzip` do). Output stops at `limit` + 1 bytes, so data that inflates past
    /// `limit` (a gzip bomb, hazards BR-06) costs at most `limit` + 1 + 64 KiB of memory and the time to produce them.
    ///
    /// - Parameters:
    ///   - bytes: the whole compressed data (for a raw-log record, its `data` field).
    ///   - limit: the largest accepted output in bytes (TelemetryEngine's `max_uncompressed`, default 1,048,576,
    ///     `spec/payloads.md` §10.4); a negative limit acts as 0, `Int.max` as no limit.
    ///   - source: names the data in errors (for example `<file>: record at byte <offset>`); never data contents.
    /// - Returns: the inflated bytes, at most `limit` of them.
    /// - Throws: `CompressionError.truncated` when the data ends inside a member (including empty input);
    ///   `.corrupt` for damaged data or anything after a member that is neither zero padding nor another member;
    ///   `.tooLarge(...)` — a `.corrupt` whose `exceededOutputLimit` is `limit` — when the output would pass `limit`;
    ///   `.codecSetup` when zlib cannot allocate its state. Offsets in the errors are into `bytes` and into the output.
    /// - Complexity: O(output); allocates the result (grown geometrically up to `limit` + 1) and one 64 KiB block.
    public static func inflate(_ bytes: UnsafeRawBufferPointer, limit requestedLimit: Int, source: String = "gzip data") throws -> [UInt8] {
        let limit = min(max(requestedLimit, 0), Int.max - 1)   // limit + 1 must not overflow
        guard let inputBase = bytes.baseAddress, bytes.count > 0 else {
            throw CompressionError.truncated(path: source, format: .gzip, compressedOffset: 0, uncompressedOffset: 0)
        }
        var stream = z_stream()
        let setup = czlib_inflateInit2(&stream, 15 + 16)   // gzip wrapper only
        guard setup == Z_OK else {
            throw CompressionError.codecSetup(path: source, format: .gzip, code: setup, message: message(stream, setup))
        }
        defer { inflateEnd(&stream) }
        let scratch = UnsafeMutablePointer<Bytef>.allocate(capacity: scratchBytes)
        defer { scratch.deallocate() }

        var output: [UInt8] = []
        output.reserveCapacity(min(limit + 1, max(bytes.count * 4, 4096)))
        var consumed = 0
        var memberEnded = false
        while true {
            if memberEnded {
                while consumed < bytes.count && bytes[consumed] == 0 { consumed += 1 }
                if consumed == bytes.count { return output }
                inflateReset(&stream)
                memberEnded = false
            }
            let offered = min(bytes.count - consumed, Int(UInt32.max))
            stream.next_in = UnsafeMutablePointer(mutating: (inputBase + consumed).assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(offered)
            let room = min(scratchBytes, limit + 1 - output.count)   // ≥ 1: output.count ≤ limit here
            stream.next_out = scratch
            stream.avail_out = uInt(room)
            let rc = CZlib.inflate(&stream, Z_NO_FLUSH)
            let used = offered - Int(stream.avail_in)
            let produced = room - Int(stream.avail_out)
            consumed += used
            output.append(contentsOf: UnsafeBufferPointer(start: scratch, count: produced))
            if output.count > limit {
                throw CompressionError.tooLarge(path: source, format: .gzip, limit: limit, compressedOffset: consumed)
            }
            switch rc {
            case Z_STREAM_END:
                memberEnded = true
            case Z_OK, Z_BUF_ERROR:
                if consumed == bytes.count && stream.avail_out > 0 {
                    // zlib has all the input and room to spare, yet the member is not finished: cut short.
                    throw CompressionError.truncated(path: source, format: .gzip, compressedOffset: consumed,
                                                     uncompressedOffset: output.count)
                }
                if used == 0 && produced == 0 && consumed < bytes.count {
                    throw CompressionError.corrupt(path: source, format: .gzip, compressedOffset: consumed,
                                                   uncompressedOffset: output.count, code: rc, message: "inflate made no progress")
                }
            default:
                throw CompressionError.corrupt(path: source, format: .gzip, compressedOffset: consumed,
                                               uncompressedOffset: output.count, code: rc, message: message(stream, rc))
            }
        }
    }

    /// `inflate(_:limit:source:)` over an array's bytes.
    /// - Throws: as `inflate(_:limit:source:)`.
    public static func inflate(_ bytes: [UInt8], limit: Int, source: String = "gzip data") throws -> [UInt8] {
        try bytes.withUnsafeBytes { try inflate($0, limit: limit, source: source) }
    }

    /// `inflate(_:limit:source:)` over a slice's bytes (offsets in errors are relative to the slice).
    /// - Throws: as `inflate(_:limit:source:)`.
    public static func inflate(_ bytes: ArraySlice<UInt8>, limit: Int, source: String = "gzip data") throws -> [UInt8] {
        try bytes.withUnsafeBytes { try inflate($0, limit: limit, source: source) }
    }

    /// Compresses `bytes` into one gzip member (zlib's deflate, no file name, mtime 0, so the output depends only on
    /// the input and `level`). For tests and tools; TelemetryEngine's storage files are xz (`XZWriter`).
    /// - Parameter level: 0 (store) … 9 (best), or -1 for zlib's default (6).
    /// - Precondition: `level` in -1…9; zlib can allocate its state (a failure there is out of memory, not bad input).
    /// - Complexity: O(`bytes.count`); allocates the result once (deflateBound), plus zlib's ~256 KiB state.
    public static func compress(_ bytes: UnsafeRawBufferPointer, level: Int = 6) -> [UInt8] {
        precondition((-1...9).contains(level), "Gzip.compress level \(level) is not in -1...9")
        var stream = z_stream()
        let setup = czlib_deflateInit2(&stream, Int32(level), 15 + 16)
        precondition(setup == Z_OK, "deflateInit2 failed: \(message(stream, setup))")
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(bytes.count)))
        return [UInt8](unsafeUninitializedCapacity: bound) { out, initialized in
            var consumed = 0
            var rc = Z_OK
            repeat {
                let offered = min(bytes.count - consumed, Int(UInt32.max))
                let last = consumed + offered == bytes.count
                stream.next_in = bytes.baseAddress.map {
                    UnsafeMutablePointer(mutating: ($0 + consumed).assumingMemoryBound(to: Bytef.self))
                }
                stream.avail_in = uInt(offered)
                let room = min(bound - initialized, Int(UInt32.max))
                stream.next_out = out.baseAddress.map { $0 + initialized }
                stream.avail_out = uInt(room)
                rc = deflate(&stream, last ? Z_FINISH : Z_NO_FLUSH)
                precondition(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR, "deflate failed: \(message(stream, rc))")
                consumed += offered - Int(stream.avail_in)
                initialized += room - Int(stream.avail_out)
            } while rc != Z_STREAM_END
        }
    }

    /// `compress(_:level:)` over an array's bytes.
    public static func compress(_ bytes: [UInt8], level: Int = 6) -> [UInt8] {
        bytes.withUnsafeBytes { compress($0, level: level) }
    }

    private static func message(_ stream: z_stream, _ rc: Int32) -> String {
        if let msg = stream.msg { return String(cString: msg) }
        switch rc {
        case Z_MEM_ERROR: return "out of memory"
        case Z_DATA_ERROR: return "invalid or incomplete deflate data"
        case Z_STREAM_ERROR: return "inconsistent stream state"
        case Z_NEED_DICT: return "a preset dictionary is needed"
        case Z_VERSION_ERROR: return "zlib version mismatch"
        default: return "zlib error \(rc)"
        }
    }
}
