import Foundation
import TelemetryConvert
#if canImport(Glibc)
import Glibc
#endif

/// Appends histogram rows to the column files of one store (`ColumnFormat`), from the import's writer thread.
///
/// Protocol per imported source file (docs/sql.md "Kill safety"): `truncate(beyond:)` after the file's old pings
/// are deleted, `append` per inserted ping, then `flush()` and `commitState(on:)` *inside* the file's
/// transaction, before COMMIT. Rows are on disk before the pings commit; rows of a rolled-back file are beyond
/// the committed row counts in `store_meta` and are cut off by the next `ColumnMaintenance.ensureConsistent`.
///
/// - Important: Not `Sendable`; owned by the writer thread.
final class ColumnWriter {
    struct Column {
        var fd: Int32
        var bucketCount: Int
        var rowCount: Int
        var lastPingID: Int64
        var pending: [UInt8] = []
    }
    let directory: String
    private(set) var columns: [String: Column] = [:]
    private let parser = PingParser(fields: [])

    /// Opens the column files listed in `committed` (file name → row count), already consistent.
    init(storePath: String, committed: [String: Int]) throws {
        directory = ColumnFormat.directory(storePath: storePath)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (fileName, rows) in committed {
            guard let parsed = ColumnFormat.parse(fileName: fileName) else { continue }
            let fd = open(directory + "/" + fileName, O_RDWR)
            guard fd >= 0 else { throw HistogramColumnError.columnFile(path: directory + "/" + fileName, reason: "cannot open: errno \(errno)") }
            var column = Column(fd: fd, bucketCount: parsed.bucketCount, rowCount: rows, lastPingID: 0)
            if rows > 0 { column.lastPingID = Self.pingID(fd: fd, bucketCount: parsed.bucketCount, row: rows - 1) }
            columns[fileName] = column
        }
    }
    deinit { for column in columns.values { close(column.fd) } }

    private static func pingID(fd: Int32, bucketCount: Int, row: Int) -> Int64 {
        var value: Int64 = 0
        _ = pread(fd, &value, 8, off_t(ColumnFormat.headerBytes + row * ColumnFormat.rowBytes(bucketCount: bucketCount)))
        return Int64(littleEndian: value)
    }

    /// Drops rows whose ping_id is above `maxPingID` (the highest ping_id in the store): they belong to pings
    /// deleted or rolled back, and SQLite may hand their ids out again.
    func truncate(beyond maxPingID: Int64) throws {
        for (fileName, var column) in columns where column.lastPingID > maxPingID {
            while column.rowCount > 0 && Self.pingID(fd: column.fd, bucketCount: column.bucketCount, row: column.rowCount - 1) > maxPingID {
                column.rowCount -= 1
            }
            column.lastPingID = column.rowCount > 0 ? Self.pingID(fd: column.fd, bucketCount: column.bucketCount, row: column.rowCount - 1) : 0
            column.pending.removeAll()
            try writeHeader(column, fileName: fileName)
            _ = ftruncate(column.fd, off_t(ColumnFormat.headerBytes + column.rowCount * ColumnFormat.rowBytes(bucketCount: column.bucketCount)))
            columns[fileName] = column
        }
    }

    /// Decodes the histograms of one ping's payload JSON and queues a row per histogram.
    func append(pingID: Int64, payload: UnsafeRawBufferPointer) throws {
        try append(pingID: pingID, histograms: DecodedHistogram.decode(json: payload, parser: parser))
    }

    /// Queues a row per histogram; creates a column file on a histogram name/layout's first row.
    /// - Throws: `HistogramColumnError.columnFile` when a new file cannot be created.
    func append(pingID: Int64, histograms: [DecodedHistogram]) throws {
        for histogram in histograms {
            let fileName = ColumnFormat.fileName(name: histogram.name, bucketCount: histogram.bucketCount)
            if columns[fileName] == nil {
                let path = directory + "/" + fileName
                let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
                guard fd >= 0 else { throw HistogramColumnError.columnFile(path: path, reason: "cannot create (errno \(errno))") }
                columns[fileName] = Column(fd: fd, bucketCount: histogram.bucketCount, rowCount: 0, lastPingID: 0)
                let header = ColumnFormat.header(bucketCount: histogram.bucketCount, rowCount: 0)
                _ = header.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            }
            columns[fileName]!.lastPingID = pingID
            withUnsafeBytes(of: pingID.littleEndian) { columns[fileName]!.pending.append(contentsOf: $0) }
            withUnsafeBytes(of: Int64(histogram.flags).littleEndian) { columns[fileName]!.pending.append(contentsOf: $0) }
            for value in histogram.values {
                withUnsafeBytes(of: value.littleEndian) { columns[fileName]!.pending.append(contentsOf: $0) }
            }
        }
    }

    /// Writes queued rows, then each touched file's header row count.
    /// - Throws: `HistogramColumnError.columnFile` when a write fails (disk full…).
    func flush() throws {
        for (fileName, var column) in columns where !column.pending.isEmpty {
            let rowBytes = ColumnFormat.rowBytes(bucketCount: column.bucketCount)
            let offset = ColumnFormat.headerBytes + column.rowCount * rowBytes
            let written = column.pending.withUnsafeBytes { pwrite(column.fd, $0.baseAddress, $0.count, off_t(offset)) }
            guard written == column.pending.count else {
                throw HistogramColumnError.columnFile(path: directory + "/" + fileName, reason: "short write (errno \(errno))")
            }
            column.rowCount += column.pending.count / rowBytes
            column.pending.removeAll(keepingCapacity: true)
            try writeHeader(column, fileName: fileName)
            columns[fileName] = column
        }
    }

    private func writeHeader(_ column: Column, fileName: String) throws {
        let header = ColumnFormat.header(bucketCount: column.bucketCount, rowCount: column.rowCount)
        let written = header.withUnsafeBytes { pwrite(column.fd, $0.baseAddress, $0.count, 0) }
        guard written == header.count else {
            throw HistogramColumnError.columnFile(path: directory + "/" + fileName, reason: "cannot write header (errno \(errno))")
        }
    }

    /// Records the row counts as the committed column state (`store_meta.histogram_columns`), in the caller's
    /// transaction.
    func commitState(on connection: Connection) throws {
        let state = columns.mapValues(\.rowCount)
        let data = try JSONSerialization.data(withJSONObject: state, options: [.sortedKeys])
        let statement = try connection.prepare("INSERT OR REPLACE INTO store_meta(key, value) VALUES (?1, ?2)")
        try statement.bind(histogramColumnsMetaKey, at: 1)
        try statement.bind(String(decoding: data, as: UTF8.self), at: 2)
        _ = try statement.step()
    }
}

/// Checks and repairs the column files of a store against `store_meta.histogram_columns`.
public enum ColumnMaintenance {
    /// Makes the column files match the committed state and returns it (file name → rows):
    /// rows beyond the committed counts (an interrupted import) are cut off; a missing column state (a store made
    /// before columns existed), a missing file, a bad header or a file shorter than its committed rows triggers
    /// a rebuild from the payload JSON (`rebuild`).
    /// - Returns: the state and whether a rebuild happened.
    /// - Throws: `StoreError.sqlite`, `HistogramColumnError.columnFile`.
    @discardableResult
    public static func ensureConsistent(store: Store) throws -> (state: [String: Int], rebuilt: Bool) {
        if let state = try check(store: store) { return (state, false) }
        return (try rebuild(store: store), true)
    }

    /// The committed state if the files are usable (after cutting uncommitted rows), nil if a rebuild is needed.
    /// - Parameter repair: cut uncommitted tails; false for readers (a concurrent import may be appending).
    static func check(store: Store, repair: Bool = true) throws -> [String: Int]? {
        guard let text = try store.connection.scalarText("SELECT value FROM store_meta WHERE key='\(histogramColumnsMetaKey)'") else {
            return (try store.connection.scalarInt("SELECT count(*) FROM pings") ?? 0) == 0 ? [:] : nil
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Int] else { return nil }
        let directory = ColumnFormat.directory(storePath: store.path)
        let present = Set((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
        for (fileName, rows) in object {
            guard present.contains(fileName), let parsed = ColumnFormat.parse(fileName: fileName) else { return nil }
            let path = directory + "/" + fileName
            let fd = open(path, O_RDWR)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            var header = [UInt8](repeating: 0, count: ColumnFormat.headerBytes)
            guard pread(fd, &header, header.count, 0) == header.count, Array(header[0..<8]) == ColumnFormat.magic else { return nil }
            let n = header.withUnsafeBytes { Int(Int64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: Int64.self))) }
            let headerRows = header.withUnsafeBytes { Int(Int64(littleEndian: $0.loadUnaligned(fromByteOffset: 16, as: Int64.self))) }
            var info = stat()
            guard fstat(fd, &info) == 0, n == parsed.bucketCount, headerRows >= rows else { return nil }
            let committedBytes = ColumnFormat.headerBytes + rows * ColumnFormat.rowBytes(bucketCount: n)
            guard Int(info.st_size) >= committedBytes else { return nil }
            if headerRows != rows || Int(info.st_size) != committedBytes {
                guard repair && !store.isReadOnly else { continue }
                let fixed = ColumnFormat.header(bucketCount: n, rowCount: rows)
                _ = fixed.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
                _ = ftruncate(fd, off_t(committedBytes))
            }
        }
        return object
    }

    /// Rebuilds every column file from the payload JSON of the store's pings and commits the state.
    /// - Returns: the new state (file name → rows).
    /// - Complexity: one pass over all payloads; O(rows) disk writes.
    @discardableResult
    public static func rebuild(store: Store) throws -> [String: Int] {
        let directory = ColumnFormat.directory(storePath: store.path)
        try? FileManager.default.removeItem(atPath: directory)
        let writer = try ColumnWriter(storePath: store.path, committed: [:])
        try store.connection.transaction {
            let statement = try store.connection.prepare("SELECT ping_id, payload FROM pings ORDER BY ping_id")
            var pending = 0
            while try statement.step() {
                let pingID = statement.columnInt64(0)
                try statement.withColumnBytes(1) { try writer.append(pingID: pingID, payload: $0) }
                pending += 1
                if pending >= 2000 { try writer.flush(); pending = 0 }
            }
            try writer.flush()
            try writer.commitState(on: store.connection)
        }
        store.histogramColumnsChanged()
        return writer.columns.mapValues(\.rowCount)
    }
}
