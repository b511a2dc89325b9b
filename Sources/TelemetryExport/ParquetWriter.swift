import Foundation
import TelemetryCompression
#if canImport(Glibc)
import Glibc
#endif

/// One column of a Parquet file this module writes.
public struct ParquetColumn: Sendable, Equatable {
    /// Logical kinds and their Parquet form (`LogicalTypes.md`):
    /// - `string`: `BYTE_ARRAY` annotated `STRING` (converted type `UTF8`); dictionary-encoded when its values
    ///   repeat (below), else PLAIN.
    /// - `int64`: `INT64`, PLAIN. `double`: `DOUBLE`, PLAIN.
    /// - `int64List`: the standard 3-level list, `<optional> group NAME (LIST) { repeated group list {
    ///   required int64 element; } }` (a null list, an empty list and buckets are told apart by the levels).
    public enum Kind: String, Sendable, Equatable { case string, int64, double, int64List }

    public var name: String
    public var kind: Kind
    /// Nullable (`OPTIONAL`) or not (`REQUIRED`).
    public var optional: Bool

    public init(name: String, kind: Kind, optional: Bool) {
        self.name = name
        self.kind = kind
        self.optional = optional
    }
}

/// Writes one Parquet file (`parquet-format` 2.x: data pages v1, GZIP, statistics, column orders), streaming rows
/// into row groups bounded in rows and bytes.
///
/// Layout: `PAR1`, per row group and column a column chunk (an optional dictionary page, then data pages of about
/// `pageBytes` each, cut at row boundaries), the `FileMetaData` footer in Thrift compact (`ParquetMetadata`), its
/// length as u32 little-endian, `PAR1`. Each page is compressed on its own with gzip (codec `GZIP`).
///
/// - String columns are dictionary-encoded (a PLAIN dictionary page, `RLE_DICTIONARY` data pages) when, within a
///   row group, their distinct values are at most 65,535, take at most 1 MiB and each repeats on average;
///   otherwise that chunk is PLAIN (high-cardinality columns such as the document id or the payload).
/// - Statistics per column chunk: null count always; min and max (`min_value`/`max_value`, type-defined order:
///   signed for INT64, IEEE for DOUBLE with NaN never written, unsigned bytes for strings) unless a string bound
///   is longer than 1,024 bytes (then left out rather than truncated).
/// - Important: Not `Sendable` (owns a file descriptor). Call `close()` to complete the file; a writer dropped
///   without it leaves a file without a footer, which every reader rejects.
public final class ParquetFileWriter {
    public let path: String
    public let columns: [ParquetColumn]
    /// Rows written so far (committed and buffered).
    public private(set) var rowCount = 0

    private let rowGroupRows: Int
    private let rowGroupBytes: Int
    private let pageBytes: Int
    private let keyValueMetadata: [(String, String)]
    private let createdBy: String
    private let fd: Int32
    private var offset: Int64 = 0
    private var builders: [ColumnChunkBuilder]
    private var rowGroups: [RowGroupMetadata] = []
    private var bufferedRows = 0
    private var closed = false

    /// Creates (or truncates) `path`.
    /// - Parameters:
    ///   - rowGroupRows, rowGroupBytes: a row group is written once it holds this many rows or about this many
    ///     uncompressed value bytes, whichever comes first (memory stays bounded by them).
    ///   - metadata: key/value pairs for the footer (e.g. the export's schema).
    /// - Throws: `ExportError.io`.
    public init(path: String, columns: [ParquetColumn], rowGroupRows: Int = 100_000, rowGroupBytes: Int = 64 << 20,
                pageBytes: Int = 1 << 20, metadata: [(String, String)] = [], createdBy: String = "telemetry (TelemetryExport)") throws {
        precondition(rowGroupRows > 0 && rowGroupBytes > 0 && pageBytes > 0, "ParquetFileWriter limits must be positive")
        self.path = path
        self.columns = columns
        self.rowGroupRows = rowGroupRows
        self.rowGroupBytes = rowGroupBytes
        self.pageBytes = pageBytes
        self.keyValueMetadata = metadata
        self.createdBy = createdBy
        builders = columns.map { ColumnChunkBuilder(column: $0) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ExportError.io(path: path, operation: "open", errno: errno) }
        self.fd = fd
        try write(Self.magic)
    }

    deinit { Glibc.close(fd) }

    static let magic: [UInt8] = Array("PAR1".utf8)

    // MARK: rows

    /// Sets column `columnIndex` of the current row. Each column gets exactly one value per row, then `endRow()`.
    /// - Precondition: the column's kind matches; `nil` only for optional columns.
    public func set(_ columnIndex: Int, string value: String?) { builders[columnIndex].append(string: value) }
    public func set(_ columnIndex: Int, int64 value: Int64?) { builders[columnIndex].append(int64: value) }
    public func set(_ columnIndex: Int, double value: Double?) { builders[columnIndex].append(double: value) }
    public func set(_ columnIndex: Int, list value: [Int64]?) { builders[columnIndex].append(list: value) }

    /// Ends the current row; writes a row group when the limits are reached.
    /// - Throws: `ExportError.io`.
    public func endRow() throws {
        bufferedRows += 1
        rowCount += 1
        for builder in builders {
            precondition(builder.rows == bufferedRows, "ParquetFileWriter: column \(builder.column.name) has \(builder.rows) values for \(bufferedRows) rows")
        }
        if bufferedRows >= rowGroupRows || builders.reduce(0, { $0 + $1.valueBytes }) >= rowGroupBytes {
            try flushRowGroup()
        }
    }

    /// Writes the buffered rows, the footer and the trailing magic; closes the file (no fsync: see `Exporter`).
    /// - Throws: `ExportError.io`.
    public func close() throws {
        guard !closed else { return }
        if bufferedRows > 0 { try flushRowGroup() }
        let footer = ParquetMetadata.fileMetadata(columns: columns, rowCount: Int64(rowCount), rowGroups: rowGroups,
                                                  keyValue: keyValueMetadata, createdBy: createdBy)
        try write(footer)
        var tail: [UInt8] = []
        ParquetEncoding.appendUInt32LE(UInt32(footer.count), to: &tail)
        tail += Self.magic
        try write(tail)
        closed = true
        if fsync(fd) != 0 { throw ExportError.io(path: path, operation: "fsync", errno: errno) }
    }

    private func flushRowGroup() throws {
        let groupStart = offset
        var chunks: [ColumnChunkMetadata] = []
        var uncompressedTotal: Int64 = 0
        for index in builders.indices {
            let encoded = builders[index].encodeChunk(pageBytes: pageBytes, at: offset)
            try write(encoded.bytes)
            uncompressedTotal += encoded.metadata.uncompressedBytes
            chunks.append(encoded.metadata)
            builders[index] = ColumnChunkBuilder(column: columns[index])
        }
        rowGroups.append(RowGroupMetadata(columns: chunks, totalByteSize: uncompressedTotal, rowCount: Int64(bufferedRows),
                                          fileOffset: groupStart, compressedBytes: offset - groupStart,
                                          ordinal: Int16(truncatingIfNeeded: rowGroups.count)))
        bufferedRows = 0
    }

    private func write(_ bytes: [UInt8]) throws {
        var done = 0
        try bytes.withUnsafeBytes { buffer in
            while done < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ExportError.io(path: path, operation: "write", errno: errno)
                }
                done += n
            }
        }
        offset += Int64(bytes.count)
    }
}

/// The values and levels of one column within the row group being built.
struct ColumnChunkBuilder {
    let column: ParquetColumn
    let maxDefinition: Int
    let maxRepetition: Int
    private(set) var rows = 0
    /// Approximate uncompressed bytes of the values (for the row-group bound).
    private(set) var valueBytes = 0

    private var definitions: [UInt8] = []
    private var repetitions: [UInt8] = []
    /// Level index and value index where each row starts (pages are cut at row boundaries).
    private var rowLevelStart: [Int] = []
    private var rowValueStart: [Int] = []
    private var levelCount = 0

    private var bytes: [UInt8] = []          // string values, concatenated
    private var byteOffsets: [Int] = [0]     // string value i is bytes[byteOffsets[i]..<byteOffsets[i+1]]
    private var ints: [Int64] = []
    private var doubles: [Double] = []

    private var dictionary: [String: Int32]? = [:]
    private var dictionaryBytes = 0
    private var dictionaryValues: [String] = []
    private var indices: [Int32] = []

    private var nullCount: Int64 = 0
    private var minInt = Int64.max, maxInt = Int64.min
    private var minDouble = Double.infinity, maxDouble = -Double.infinity
    private var minBytes: [UInt8]?, maxBytes: [UInt8]?
    private var valueCount = 0

    init(column: ParquetColumn) {
        self.column = column
        switch column.kind {
        case .int64List: (maxDefinition, maxRepetition) = (column.optional ? 2 : 1, 1)
        default: (maxDefinition, maxRepetition) = (column.optional ? 1 : 0, 0)
        }
    }

    private mutating func beginRow() {
        rowLevelStart.append(levelCount)
        rowValueStart.append(valueCount)
        rows += 1
    }

    private mutating func null() {
        precondition(column.optional, "ParquetFileWriter: null in required column \(column.name)")
        if maxDefinition > 0 { definitions.append(0) }
        if maxRepetition > 0 { repetitions.append(0) }
        levelCount += 1
        nullCount += 1
    }

    private mutating func present() {
        if maxDefinition > 0 { definitions.append(UInt8(maxDefinition)) }
        levelCount += 1
    }

    mutating func append(string value: String?) {
        precondition(column.kind == .string, "ParquetFileWriter: \(column.name) is not a string column")
        beginRow()
        guard let value else { return null() }
        present()
        let utf8 = value.utf8
        bytes.append(contentsOf: utf8)
        byteOffsets.append(bytes.count)
        valueBytes += utf8.count + 4
        valueCount += 1
        if minBytes == nil || utf8.lexicographicallyPrecedes(minBytes!) { minBytes = Array(utf8) }
        if maxBytes == nil || maxBytes!.lexicographicallyPrecedes(utf8) { maxBytes = Array(utf8) }
        if dictionary != nil {
            if let index = dictionary![value] {
                indices.append(index)
            } else if dictionaryValues.count < 65_535 && dictionaryBytes + utf8.count + 4 <= 1 << 20 {
                let index = Int32(dictionaryValues.count)
                dictionary![value] = index
                dictionaryValues.append(value)
                dictionaryBytes += utf8.count + 4
                indices.append(index)
            } else {
                dictionary = nil; dictionaryValues = []; indices = []   // too many distinct values: PLAIN
            }
        }
    }

    mutating func append(int64 value: Int64?) {
        precondition(column.kind == .int64, "ParquetFileWriter: \(column.name) is not an int64 column")
        beginRow()
        guard let value else { return null() }
        present()
        ints.append(value)
        valueBytes += 8
        valueCount += 1
        minInt = min(minInt, value); maxInt = max(maxInt, value)
    }

    mutating func append(double value: Double?) {
        precondition(column.kind == .double, "ParquetFileWriter: \(column.name) is not a double column")
        beginRow()
        guard let value else { return null() }
        present()
        doubles.append(value)
        valueBytes += 8
        valueCount += 1
        if !value.isNaN { minDouble = min(minDouble, value); maxDouble = max(maxDouble, value) }
    }

    mutating func append(list value: [Int64]?) {
        precondition(column.kind == .int64List, "ParquetFileWriter: \(column.name) is not a list column")
        beginRow()
        guard let value else { return null() }
        if value.isEmpty {
            definitions.append(UInt8(maxDefinition - 1))   // the list is there, no element
            repetitions.append(0)
            levelCount += 1
            nullCount += 1                                  // as parquet-cpp counts: a leaf level below the maximum
            return
        }
        for (elementIndex, element) in value.enumerated() {
            definitions.append(UInt8(maxDefinition))
            repetitions.append(elementIndex == 0 ? 0 : 1)
            ints.append(element)
            minInt = min(minInt, element); maxInt = max(maxInt, element)
        }
        levelCount += value.count
        valueCount += value.count
        valueBytes += 8 * value.count + 2
    }

    // MARK: encoding

    struct Encoded {
        var bytes: [UInt8]
        var metadata: ColumnChunkMetadata
    }

    /// The column chunk (dictionary page when used, then data pages) starting at file offset `start`.
    func encodeChunk(pageBytes: Int, at start: Int64) -> Encoded {
        var out: [UInt8] = []
        var uncompressed: Int64 = 0
        var dictionaryOffset: Int64?
        let useDictionary: Bool = {
            guard column.kind == .string, dictionary != nil, !dictionaryValues.isEmpty else { return false }
            return dictionaryValues.count * 2 <= valueCount
        }()
        if useDictionary {
            var plain: [UInt8] = []
            for value in dictionaryValues {
                ParquetEncoding.appendUInt32LE(UInt32(value.utf8.count), to: &plain)
                plain.append(contentsOf: value.utf8)
            }
            dictionaryOffset = start
            let page = Self.page(plain, header: { header, compressed in
                ParquetMetadata.dictionaryPageHeader(uncompressed: plain.count, compressed: compressed,
                                                     values: dictionaryValues.count, into: &header)
            })
            uncompressed += Int64(page.uncompressedWithHeader)
            out += page.bytes
        }
        let dataOffset = start + Int64(out.count)

        // Cut pages at row boundaries once their values pass pageBytes.
        var firstRow = 0
        while firstRow < rows || (rows == 0 && firstRow == 0) {
            var lastRow = firstRow
            var estimate = 0
            while lastRow < rows {
                let nextValue = lastRow + 1 < rows ? rowValueStart[lastRow + 1] : valueCount
                estimate += valueBytes(from: rowValueStart[lastRow], to: nextValue)
                lastRow += 1
                if estimate >= pageBytes { break }
            }
            let levelStart = firstRow < rows ? rowLevelStart[firstRow] : 0
            let levelEnd = lastRow < rows ? rowLevelStart[lastRow] : levelCount
            let valueStart = firstRow < rows ? rowValueStart[firstRow] : 0
            let valueEnd = lastRow < rows ? rowValueStart[lastRow] : valueCount
            var body: [UInt8] = []
            if maxRepetition > 0 { ParquetEncoding.appendLevels(repetitions[levelStart..<levelEnd], maxLevel: maxRepetition, to: &body) }
            if maxDefinition > 0 { ParquetEncoding.appendLevels(definitions[levelStart..<levelEnd], maxLevel: maxDefinition, to: &body) }
            if useDictionary {
                let width = max(1, ParquetEncoding.bitWidth(UInt32(dictionaryValues.count - 1)))
                body.append(UInt8(width))
                ParquetEncoding.appendHybrid(indices[valueStart..<valueEnd], bitWidth: width, to: &body)
            } else {
                appendPlain(from: valueStart, to: valueEnd, into: &body)
            }
            let encoding = useDictionary ? ParquetEncoding.rleDictionary : ParquetEncoding.plain
            let page = Self.page(body, header: { header, compressed in
                ParquetMetadata.dataPageHeader(uncompressed: body.count, compressed: compressed, values: levelEnd - levelStart,
                                               encoding: encoding, into: &header)
            })
            uncompressed += Int64(page.uncompressedWithHeader)
            out += page.bytes
            if lastRow == firstRow { break }   // no rows: one empty page
            firstRow = lastRow
        }

        var encodings: [Int32] = [useDictionary ? ParquetEncoding.rleDictionary : ParquetEncoding.plain, ParquetEncoding.rle]
        if useDictionary { encodings.insert(ParquetEncoding.plain, at: 0) }
        let metadata = ColumnChunkMetadata(
            column: column, encodings: encodings, valueCount: Int64(levelCount),
            uncompressedBytes: uncompressed, compressedBytes: Int64(out.count),
            dataPageOffset: dataOffset, dictionaryPageOffset: dictionaryOffset, statistics: statistics())
        return Encoded(bytes: out, metadata: metadata)
    }

    private func valueBytes(from start: Int, to end: Int) -> Int {
        switch column.kind {
        case .string: byteOffsets[end] - byteOffsets[start] + 4 * (end - start)
        default: 8 * (end - start)
        }
    }

    private func appendPlain(from start: Int, to end: Int, into body: inout [UInt8]) {
        switch column.kind {
        case .string:
            for index in start..<end {
                let range = byteOffsets[index]..<byteOffsets[index + 1]
                ParquetEncoding.appendUInt32LE(UInt32(range.count), to: &body)
                body.append(contentsOf: bytes[range])
            }
        case .int64, .int64List:
            body.reserveCapacity(body.count + 8 * (end - start))
            for index in start..<end { ParquetEncoding.appendInt64LE(ints[index], to: &body) }
        case .double:
            for index in start..<end { ParquetEncoding.appendDoubleLE(doubles[index], to: &body) }
        }
    }

    /// A page: its Thrift header, then the gzip-compressed body.
    private static func page(_ body: [UInt8], header: (inout ThriftCompactWriter, Int) -> Void) -> (bytes: [UInt8], uncompressedWithHeader: Int) {
        let compressed = Gzip.compress(body, level: 6)
        var writer = ThriftCompactWriter()
        writer.writeStruct { header(&$0, compressed.count) }
        return (writer.bytes + compressed, writer.bytes.count + body.count)
    }

    private func statistics() -> ColumnStatistics {
        var stats = ColumnStatistics(nullCount: nullCount, min: nil, max: nil)
        guard valueCount > 0 else { return stats }
        switch column.kind {
        case .string:
            if let minBytes, let maxBytes, minBytes.count <= 1024, maxBytes.count <= 1024 { (stats.min, stats.max) = (minBytes, maxBytes) }
        case .int64, .int64List:
            var low: [UInt8] = [], high: [UInt8] = []
            ParquetEncoding.appendInt64LE(minInt, to: &low); ParquetEncoding.appendInt64LE(maxInt, to: &high)
            (stats.min, stats.max) = (low, high)
        case .double:
            guard minDouble <= maxDouble else { return stats }   // only NaNs
            var low: [UInt8] = [], high: [UInt8] = []
            // parquet-format: write -0.0 as a zero minimum and +0.0 as a zero maximum.
            ParquetEncoding.appendDoubleLE(minDouble == 0 ? -0.0 : minDouble, to: &low)
            ParquetEncoding.appendDoubleLE(maxDouble == 0 ? 0.0 : maxDouble, to: &high)
            (stats.min, stats.max) = (low, high)
        }
        return stats
    }
}
