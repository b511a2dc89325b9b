import Foundation
import TelemetryConvert

/// The encoded histograms of one ping as `PingParser` extracts them (`csimdjson.h`, `csj_parser_set_histograms`):
/// entries of u16 name length, name, u32 bucket count n, u32 body length, body (a column row without its
/// ping id, `ColumnFormat`).
struct EncodedHistograms: Sequence {
    let bytes: UnsafeRawBufferPointer

    struct Entry {
        var name: UnsafeRawBufferPointer
        var bucketCount: Int
        var body: UnsafeRawBufferPointer
    }

    struct Iterator: IteratorProtocol {
        let bytes: UnsafeRawBufferPointer
        var at = 0
        mutating func next() -> Entry? {
            guard at + 2 <= bytes.count else { return nil }
            let nameLength = Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
            let nameStart = at + 2
            guard nameStart + nameLength + 8 <= bytes.count else { return nil }
            let n = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: nameStart + nameLength, as: UInt32.self)))
            let bodyLength = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: nameStart + nameLength + 4, as: UInt32.self)))
            let bodyStart = nameStart + nameLength + 8
            guard bodyStart + bodyLength <= bytes.count else { return nil }
            at = bodyStart + bodyLength
            return Entry(name: UnsafeRawBufferPointer(rebasing: bytes[nameStart..<nameStart + nameLength]), bucketCount: n,
                         body: UnsafeRawBufferPointer(rebasing: bytes[bodyStart..<bodyStart + bodyLength]))
        }
    }

    func makeIterator() -> Iterator { Iterator(bytes: bytes) }
}

/// File format of one histogram column (`docs/sql.md` "Column files").
///
/// Sparse: a row only for pings that carry the histogram, rows in `ping_id` order, variable length.
/// Header (32 bytes, little-endian): magic `THCOL002`, bucket count n (Int64), committed rows (Int64),
/// committed row bytes after the header (Int64).
/// Row: varint `ping_id` − previous row's `ping_id` (the first row: its `ping_id`), varint body length, body:
/// u8 flags (bit i: statistic i is a double), varint k = nonzero buckets, k × (varint gap since the previous
/// nonzero bucket + 1, zigzag varint count), 5 statistics (double: 8 bytes IEEE; integer: zigzag varint).
/// Varints are unsigned LEB128 (at most 10 bytes).
enum ColumnFormat {
    static let magic: [UInt8] = Array("THCOL002".utf8)
    static let headerBytes = 32

    /// Directory of the column files of the store at `storePath`.
    static func directory(storePath: String) -> String { storePath + ".columns" }

    /// File name of a column: `<NAME>.<n>.col`, the name percent-encoded outside `[A-Za-z0-9_-]`.
    static func fileName(name: String, bucketCount: Int) -> String {
        var safe = ""
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                safe.append(Character(UnicodeScalar(byte)))
            default:
                safe += String(format: "%%%02X", byte)
            }
        }
        return "\(safe).\(bucketCount).col"
    }

    /// Inverse of `fileName`; nil for a name that is not a column file.
    static func parse(fileName: String) -> (name: String, bucketCount: Int)? {
        guard fileName.hasSuffix(".col") else { return nil }
        let stem = fileName.dropLast(4)
        guard let dot = stem.lastIndex(of: "."), let n = Int(stem[stem.index(after: dot)...]), n > 0 else { return nil }
        guard let name = String(stem[..<dot]).removingPercentEncoding else { return nil }
        return (name, n)
    }

    static func header(bucketCount: Int, rowCount: Int, byteCount: Int) -> [UInt8] {
        var bytes = magic
        for value in [Int64(bucketCount), Int64(rowCount), Int64(byteCount)] {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }
}

/// Unsigned LEB128.
@inline(__always) func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
    var v = value
    while v >= 0x80 { out.append(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
    out.append(UInt8(v))
}

/// Reads an unsigned LEB128 at `at` (advanced) below `end`; nil when it runs past `end` or over 10 bytes.
@inline(__always) func readVarint(_ base: UnsafeRawPointer, _ at: inout Int, _ end: Int) -> UInt64? {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    while at < end {
        let byte = base.load(fromByteOffset: at, as: UInt8.self)
        at += 1
        result |= UInt64(byte & 0x7F) << shift
        if byte < 0x80 { return result }
        shift += 7
        if shift > 63 { return nil }
    }
    return nil
}

@inline(__always) func unzigzag(_ value: UInt64) -> Int64 { Int64(bitPattern: (value >> 1) ^ (0 &- (value & 1))) }

/// The committed state of one column file: rows, row bytes after the header, last row's `ping_id`, CRC-64 of the
/// row bytes (checked when a reader indexes the rows: a flipped bit is an error, never a wrong number).
public struct ColumnState: Equatable, Sendable {
    public var rows: Int
    public var bytes: Int
    public var lastPingID: Int64
    public var crc: UInt64
}

/// The store_meta key holding the committed column state: a JSON object
/// `{"<file name>": [rows, row bytes, last ping_id, "CRC-64 of the row bytes as 16 hex digits"], …}`.
let histogramColumnsMetaKey = "histogram_columns"

/// Errors of the histogram column files. Descriptions never include ping contents.
public enum HistogramColumnError: Error, Equatable, CustomStringConvertible {
    /// A column file could not be opened, written or mapped.
    case columnFile(path: String, reason: String)

    public var description: String {
        switch self {
        case let .columnFile(path, reason): "\(path): histogram column file: \(reason) (rebuild with 'telemetry reindex')"
        }
    }
}
