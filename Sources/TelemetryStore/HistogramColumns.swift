import Foundation
import TelemetryConvert

/// One histogram of one ping, decoded from the storage-format array (`spec/histograms.md` §4):
/// `[b0 … b(n-1), sum, log_sum, log_sum_squares, sum_squares_lo, sum_squares_hi]`, `-1` = absent statistic.
struct DecodedHistogram {
    var name: String
    /// Bucket counts (n) then the five statistics as bit patterns: Int64, or Double bits when `flags` bit i is set.
    var values: [Int64]
    /// Bit i (0…4): statistic i is a double.
    var flags: UInt8
    var bucketCount: Int { values.count - 5 }

    /// The storage histograms of a ping: the top-level `histograms` (classic/converted pings) or
    /// `payload.histograms` (unified main pings). Keyed and child-process histograms are not decoded.
    /// Arrays that are not `n ≥ 1` integer buckets + 5 numbers are skipped (they stay in the JSON).
    static func decode(payload: JSONValue) -> [DecodedHistogram] {
        let object = payload["histograms"]?.objectValue ?? payload["payload"]?["histograms"]?.objectValue
        guard let object else { return [] }
        var result: [DecodedHistogram] = []
        result.reserveCapacity(object.members.count)
        var seen = Set<String>()
        members: for member in object.members {
            guard seen.insert(member.key).inserted, let array = member.value.arrayValue, array.count >= 6 else { continue }
            var values = [Int64](); values.reserveCapacity(array.count)
            var flags: UInt8 = 0
            let n = array.count - 5
            for (index, element) in array.enumerated() {
                if index < n {
                    guard case let .int(count) = element else { continue members }
                    values.append(count)
                } else {
                    switch element {
                    case let .int(i): values.append(i)
                    case let .double(d): values.append(Int64(bitPattern: d.bitPattern)); flags |= 1 << UInt8(index - n)
                    default: continue members
                    }
                }
            }
            result.append(DecodedHistogram(name: member.key, values: values, flags: flags))
        }
        return result
    }

    /// Decodes the histograms of one ping's JSON (already validated); JSON that does not parse gives none.
    /// - Complexity: O(bytes) when the ping has histograms (builds the JSON tree); a byte search otherwise.
    static func decode(json: UnsafeRawBufferPointer, parser: PingParser) -> [DecodedHistogram] {
        guard json.firstRange(of: histogramsKey) != nil else { return [] }
        guard let value = try? JSONValue.parse(json, validatingWith: parser).value else { return [] }
        return decode(payload: value)
    }
}

/// File format of one histogram column (`docs/sql.md` "Column files").
///
/// Sparse: a row only for pings that carry the histogram, rows sorted by `ping_id`. All values little-endian.
/// Header (32 bytes): magic `THCOL001`, bucket count n (Int64), committed row count (Int64), reserved (Int64).
/// Row (8 × (n + 7) bytes): ping_id (Int64), flags (Int64; bit i = statistic i is a Double), n bucket counts
/// (Int64), 5 statistics (Int64, or Double bits per flags).
enum ColumnFormat {
    static let magic: [UInt8] = Array("THCOL001".utf8)
    static let headerBytes = 32
    static func rowBytes(bucketCount: Int) -> Int { 8 * (bucketCount + 7) }

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

    static func header(bucketCount: Int, rowCount: Int) -> [UInt8] {
        var bytes = magic
        for value in [Int64(bucketCount), Int64(rowCount), 0] {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }
}

private let histogramsKey = Array("\"histograms\"".utf8)

/// The store_meta key holding the committed column state: a JSON object `{"<file name>": rowCount, …}`.
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
