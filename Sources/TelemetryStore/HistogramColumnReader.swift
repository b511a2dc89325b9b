import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One statistic of a stored histogram: exact integer, or double when the ping had a fractional value.
/// `-1` (integer) means absent (`spec/histograms.md` §4).
public enum HistogramStatistic: Sendable, Equatable {
    case integer(Int64)
    case real(Double)
}

/// One memory-mapped histogram column: the rows of one histogram name and one layout (bucket count), one row
/// per ping that carries it, sorted by `ping_id` (`ColumnFormat`). Only the committed rows are visible.
///
/// - Important: Buffers returned by `counts(row:)` point into the mapping and are valid while this object lives.
///   Immutable after init, hence `Sendable`: the mapping is read-only (`PROT_READ`).
public final class HistogramColumn: @unchecked Sendable {   // immutable; read-only mapping
    public let name: String
    /// Buckets per row (n).
    public let bucketCount: Int
    /// Rows (pings carrying this histogram in this layout).
    public let rowCount: Int
    let rowBytes: Int
    private let base: UnsafeRawPointer?
    private let mappedBytes: Int

    init(path: String, name: String, bucketCount: Int, rows: Int) throws {
        self.name = name
        self.bucketCount = bucketCount
        rowBytes = ColumnFormat.rowBytes(bucketCount: bucketCount)
        let needed = ColumnFormat.headerBytes + rows * rowBytes
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw HistogramColumnError.columnFile(path: path, reason: "cannot open (errno \(errno))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, Int(info.st_size) >= needed else {
            throw HistogramColumnError.columnFile(path: path, reason: "shorter than its \(rows) committed rows")
        }
        rowCount = rows
        mappedBytes = needed
        if rows == 0 { base = nil; return }
        let pointer = mmap(nil, needed, PROT_READ, MAP_SHARED, fd, 0)
        guard let pointer, pointer != MAP_FAILED else {
            throw HistogramColumnError.columnFile(path: path, reason: "cannot map (errno \(errno))")
        }
        base = UnsafeRawPointer(pointer)
    }
    deinit { if let base { munmap(UnsafeMutableRawPointer(mutating: base), mappedBytes) } }

    @inline(__always) private func rowStart(_ row: Int) -> UnsafeRawPointer {
        base! + ColumnFormat.headerBytes + row * rowBytes
    }

    /// The `ping_id` of row `row` (0-based, `row < rowCount`).
    public func pingID(row: Int) -> Int64 {
        Int64(littleEndian: rowStart(row).loadUnaligned(as: Int64.self))
    }

    /// The row of `pingID`, or nil when that ping does not carry this histogram in this layout.
    /// - Parameter hint: a row to try first (the previous lookup's row + 1 makes ascending scans O(1)).
    /// - Complexity: O(1) on a hint hit, else O(log rowCount).
    public func row(of pingID: Int64, hint: Int = 0) -> Int? {
        if hint >= 0 && hint < rowCount && self.pingID(row: hint) == pingID { return hint }
        var low = 0, high = rowCount
        while low < high {
            let mid = (low + high) / 2
            if self.pingID(row: mid) < pingID { low = mid + 1 } else { high = mid }
        }
        return low < rowCount && self.pingID(row: low) == pingID ? low : nil
    }

    /// The bucket counts of row `row`, zero-copy (little-endian hosts). Length `bucketCount`.
    public func counts(row: Int) -> UnsafeBufferPointer<Int64> {
        UnsafeBufferPointer(start: (rowStart(row) + 16).assumingMemoryBound(to: Int64.self), count: bucketCount)
    }

    /// Statistic `index` (0 sum, 1 log_sum, 2 log_sum_squares, 3 sum_squares_lo, 4 sum_squares_hi) of row `row`.
    public func statistic(row: Int, index: Int) -> HistogramStatistic {
        let start = rowStart(row)
        let flags = start.loadUnaligned(fromByteOffset: 8, as: Int64.self)
        let bits = Int64(littleEndian: start.loadUnaligned(fromByteOffset: 16 + 8 * (bucketCount + index), as: Int64.self))
        return flags & (1 << index) != 0 ? .real(Double(bitPattern: UInt64(bitPattern: bits))) : .integer(bits)
    }

    /// Row `row` as the storage-format array (`[b0…b(n-1), sum, log_sum, log_sum_squares, lo, hi]`) in JSON
    /// number form; allocates. For tests and display.
    public func storageArray(row: Int) -> [HistogramStatistic] {
        counts(row: row).map { .integer($0) } + (0..<5).map { statistic(row: row, index: $0) }
    }
}

/// The histogram columns of a store, memory-mapped (`docs/sql.md` "Column files").
///
/// - Important: A snapshot: columns written after `open` are not seen; open again after an import.
public final class HistogramColumns: @unchecked Sendable {   // immutable after init
    /// Columns by histogram name; one per layout (bucket count), sorted by bucket count.
    public let byName: [String: [HistogramColumn]]

    /// Maps the committed column files of `store` (repairing or rebuilding them first when the store is
    /// writable and they are inconsistent: `ColumnMaintenance.ensureConsistent`).
    /// - Throws: `HistogramColumnError`, `StoreError.sqlite`; for a read-only store with damaged columns,
    ///   `HistogramColumnError.columnFile` asking for `telemetry reindex`.
    public static func open(store: Store, repair: Bool = true) throws -> HistogramColumns {
        let state: [String: Int]
        if store.isReadOnly || !repair {
            guard let checked = try ColumnMaintenance.check(store: store, repair: false) else {
                throw HistogramColumnError.columnFile(path: ColumnFormat.directory(storePath: store.path),
                                                      reason: "column files missing or out of date (import with --histogram-columns to keep them current)")
            }
            state = checked
        } else {
            state = try ColumnMaintenance.ensureConsistent(store: store).state
        }
        let directory = ColumnFormat.directory(storePath: store.path)
        var byName: [String: [HistogramColumn]] = [:]
        for (fileName, rows) in state {
            guard let parsed = ColumnFormat.parse(fileName: fileName) else { continue }
            let column = try HistogramColumn(path: directory + "/" + fileName, name: parsed.name,
                                             bucketCount: parsed.bucketCount, rows: rows)
            byName[parsed.name, default: []].append(column)
        }
        for key in byName.keys { byName[key]!.sort { $0.bucketCount < $1.bucketCount } }
        return HistogramColumns(byName: byName)
    }

    init(byName: [String: [HistogramColumn]]) { self.byName = byName }

    /// The columns of histogram `name`, one per layout (bucket count); empty when no ping carries it.
    public func column(named name: String) -> [HistogramColumn] { byName[name] ?? [] }

    /// Histogram names with at least one column, sorted.
    public var names: [String] { byName.keys.sorted() }
}
