import Foundation
import TelemetryConvert
import TelemetryCore

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

    /// Longest readable prefix of a histogram name kept in its column file's name.
    static let fileNamePrefixBytes = 48

    /// File name of a column: `<prefix>.<hash>.<n>.col`, at most 84 bytes whatever the histogram name.
    ///
    /// The name never comes raw from the payload: `prefix` is the name's first 48 bytes with every byte outside
    /// `[A-Za-z0-9_-]` replaced by `_` (`_` alone for an empty name), `hash` the 16 hex digits of the FNV-1a 64 of
    /// the name's UTF-8 bytes, `n` the bucket count. The real name is in the store's metadata
    /// (`ColumnEntry.histogramName`); a hash collision gets `~<k>` after the hash (`ColumnWriter`).
    static func fileName(name: String, bucketCount: Int, collision: Int = 0) -> String {
        var prefix = ""
        var hash: UInt64 = 0xcbf29ce484222325
        for byte in name.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100000001b3
            guard prefix.utf8.count < fileNamePrefixBytes else { continue }
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                prefix.append(Character(UnicodeScalar(byte)))
            default:
                prefix.append("_")
            }
        }
        if prefix.isEmpty { prefix = "_" }
        let hex = String(hash, radix: 16)
        let digits = String(repeating: "0", count: 16 - hex.count) + hex
        return "\(prefix).\(digits)\(collision == 0 ? "" : "~\(collision)").\(bucketCount).col"
    }

    /// Name and bucket count of a column file named by layout 1's rule (`<NAME>.<n>.col`, the name
    /// percent-encoded outside `[A-Za-z0-9_-]`), for metadata written before the real name was recorded;
    /// nil for any other name.
    static func parseLegacy(fileName: String) -> (name: String, bucketCount: Int)? {
        guard fileName.hasSuffix(".col") else { return nil }
        let stem = fileName.dropLast(4)
        guard let dot = stem.lastIndex(of: "."), let n = Int(stem[stem.index(after: dot)...]), n > 0 else { return nil }
        guard let name = String(stem[..<dot]).removingPercentEncoding else { return nil }
        return (name, n)
    }

    /// `true` for a file name this module could have written (a column file name made by `fileName`, bounded
    /// and without `/`): metadata naming anything else is not trusted as a path.
    static func isSafe(fileName: String) -> Bool {
        guard fileName.hasSuffix(".col"), !fileName.hasPrefix("."), fileName.utf8.count <= 255 else { return false }
        return fileName.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "~"), UInt8(ascii: "%"): true
            default: false
            }
        }
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

/// One column file as the store's metadata records it (`store_meta.histogram_columns`): the file, the histogram
/// it holds and its committed state. The source of truth for which files exist and what they contain: readers,
/// `reindex` and `telemetry check` go by these entries, never by parsing file names.
public struct ColumnEntry: Equatable, Sendable {
    /// File name inside the column directory (`ColumnFormat.directory`): bounded ASCII, never raw payload text.
    public var fileName: String
    /// The histogram's real name as the payload spells it (any length, any characters).
    public var histogramName: String
    /// Buckets per row (n); the header of the file repeats it.
    public var bucketCount: Int
    /// Committed rows, bytes, last ping id and CRC-64.
    public var state: ColumnState

    public init(fileName: String, histogramName: String, bucketCount: Int, state: ColumnState) {
        self.fileName = fileName
        self.histogramName = histogramName
        self.bucketCount = bucketCount
        self.state = state
    }
}

/// The store_meta key holding the committed column state: a JSON object keyed by file name,
/// `{"<file name>": {"name": "<histogram name>", "buckets": n, "rows": r, "bytes": b, "last_ping_id": p,
/// "crc": "<CRC-64 of the row bytes, hex>"}, …}`. Stores written before the real name was recorded hold
/// `{"<file name>": [rows, bytes, last ping_id, "crc"]}` (name and n then come from the file name; still read).
let histogramColumnsMetaKey = "histogram_columns"

/// Encodes `entries` as the `histogram_columns` JSON (see `histogramColumnsMetaKey`).
func encodeColumnEntries<S: Sequence>(_ entries: S) -> String where S.Element == ColumnEntry {
    var text = "{"
    for (number, entry) in entries.sorted(by: { $0.fileName < $1.fileName }).enumerated() {
        // File names are ASCII from `ColumnFormat.fileName` ([A-Za-z0-9_.~-]): no escaping needed.
        text += number == 0 ? "\"" : ",\""
        text += entry.fileName
        text += "\":{\"name\":"
        text += jsonQuoted(entry.histogramName)
        text += ",\"buckets\":\(entry.bucketCount),\"rows\":\(entry.state.rows),\"bytes\":\(entry.state.bytes)"
        text += ",\"last_ping_id\":\(entry.state.lastPingID),\"crc\":\"\(String(entry.state.crc, radix: 16))\"}"
    }
    return text + "}"
}

/// Decodes the `histogram_columns` JSON (either shape, see `histogramColumnsMetaKey`); nil when it is malformed
/// or names a file `ColumnFormat.fileName` could not have written.
func decodeColumnEntries(_ text: String) -> [String: ColumnEntry]? {
    guard let raw = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return nil }
    var entries: [String: ColumnEntry] = [:]
    for (fileName, value) in raw {
        guard ColumnFormat.isSafe(fileName: fileName) else { return nil }
        if let object = value as? [String: Any] {
            guard let name = object["name"] as? String, let n = object["buckets"] as? Int, n > 0,
                  let rows = object["rows"] as? Int, let bytes = object["bytes"] as? Int, let last = object["last_ping_id"] as? Int,
                  let crcText = object["crc"] as? String, let crc = UInt64(crcText, radix: 16), rows >= 0, bytes >= 0 else { return nil }
            entries[fileName] = ColumnEntry(fileName: fileName, histogramName: name, bucketCount: n,
                                            state: ColumnState(rows: rows, bytes: bytes, lastPingID: Int64(last), crc: crc))
        } else if let values = value as? [Any] {
            guard values.count == 4, let rows = values[0] as? Int, let bytes = values[1] as? Int, let last = values[2] as? Int,
                  let crcText = values[3] as? String, let crc = UInt64(crcText, radix: 16), rows >= 0, bytes >= 0,
                  let parsed = ColumnFormat.parseLegacy(fileName: fileName) else { return nil }
            entries[fileName] = ColumnEntry(fileName: fileName, histogramName: parsed.name, bucketCount: parsed.bucketCount,
                                            state: ColumnState(rows: rows, bytes: bytes, lastPingID: Int64(last), crc: crc))
        } else {
            return nil
        }
    }
    return entries
}

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
