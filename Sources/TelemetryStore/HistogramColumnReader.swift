import Foundation
import TelemetryCompression
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
/// per ping that carries it, in `ping_id` order (`ColumnFormat`). Only the committed rows are visible.
///
/// The row index (`ping_id` and offset of each row) is built on first use, validating every row; a damaged
/// file is reported (`HistogramColumnError`) and rebuilt by `import`/`reindex`, never read past its end.
///
/// - Important: Immutable after init apart from the lazily built index (guarded by a lock), hence `Sendable`;
///   the mapping is read-only (`PROT_READ`).
public final class HistogramColumn: @unchecked Sendable {   // see Important
    public let name: String
    /// Buckets per row (n).
    public let bucketCount: Int
    /// Rows (pings carrying this histogram in this layout).
    public let rowCount: Int
    let path: String
    private let base: UnsafeRawPointer?
    private let mappedBytes: Int
    private let dataEnd: Int
    private let crc: UInt64
    private let lock = NSLock()
    private var index: Result<HistogramRows, HistogramColumnError>?

    init(path: String, name: String, bucketCount: Int, state: ColumnState) throws {
        self.name = name
        self.bucketCount = bucketCount
        self.path = path
        let needed = ColumnFormat.headerBytes + state.bytes
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw HistogramColumnError.columnFile(path: path, reason: "cannot open (errno \(errno))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, Int(info.st_size) >= needed else {
            throw HistogramColumnError.columnFile(path: path, reason: "shorter than its \(state.rows) committed rows")
        }
        rowCount = state.rows
        crc = state.crc
        mappedBytes = needed
        dataEnd = needed
        if state.rows == 0 { base = nil; return }
        let pointer = mmap(nil, needed, PROT_READ, MAP_SHARED, fd, 0)
        guard let pointer, pointer != MAP_FAILED else {
            throw HistogramColumnError.columnFile(path: path, reason: "cannot map (errno \(errno))")
        }
        base = UnsafeRawPointer(pointer)
    }
    deinit { if let base { munmap(UnsafeMutableRawPointer(mutating: base), mappedBytes) } }

    /// The row index, built (and every row validated) on first use.
    /// - Throws: `HistogramColumnError.columnFile` for a damaged file.
    public func rows() throws -> HistogramRows {
        try lock.withLock {
            if index == nil { index = buildIndex() }
            return try index!.get()
        }
    }

    private func buildIndex() -> Result<HistogramRows, HistogramColumnError> {
        var pingIDs = [Int64](); pingIDs.reserveCapacity(rowCount)
        var offsets = [Int](); offsets.reserveCapacity(rowCount + 1)
        guard let base else { return .success(HistogramRows(base: nil, bucketCount: bucketCount, pingIDs: [], offsets: [0], name: name)) }
        var at = ColumnFormat.headerBytes
        let computed = CRC64.update(0, UnsafeRawBufferPointer(start: base + at, count: dataEnd - at))
        guard computed == crc else {
            return .failure(.columnFile(path: path, reason: "damaged: checksum mismatch (CRC-64 \(String(computed, radix: 16)), committed \(String(crc, radix: 16)))"))
        }
        var previous: Int64 = 0
        func damaged(_ reason: String) -> Result<HistogramRows, HistogramColumnError> {
            .failure(.columnFile(path: path, reason: "damaged: \(reason) at byte \(at)"))
        }
        for _ in 0..<rowCount {
            guard let delta = readVarint(base, &at, dataEnd), delta > 0 || pingIDs.isEmpty,
                  delta <= UInt64(Int64.max - previous) else { return damaged("bad ping_id") }
            previous += Int64(delta)
            guard let length = readVarint(base, &at, dataEnd), length <= UInt64(dataEnd - at) else { return damaged("bad row length") }
            let end = at + Int(length)
            guard HistogramRows.validate(base, at, end, bucketCount: bucketCount) else { return damaged("bad row body") }
            pingIDs.append(previous)
            offsets.append(at)
            at = end
        }
        offsets.append(at)
        guard at == dataEnd else { return damaged("\(dataEnd - at) byte(s) beyond the committed rows") }
        return .success(HistogramRows(base: base, bucketCount: bucketCount, pingIDs: pingIDs, offsets: offsets, name: name))
    }
}

/// The validated row index of one column: `ping_id` and body offset per row. Immutable, hence `Sendable`.
/// Bodies point into the column's mapping: use while the `HistogramColumn` lives.
public final class HistogramRows: @unchecked Sendable {   // immutable; read-only mapping
    private let base: UnsafeRawPointer?
    public let bucketCount: Int
    /// `ping_id` of each row, ascending.
    public let pingIDs: [Int64]
    /// Body start of row i at `offsets[i]`; body end at the start of the next row's header — bodies are
    /// decoded by their own structure, so only starts matter. `offsets.last` = end of the rows.
    private let offsets: [Int]
    let name: String

    init(base: UnsafeRawPointer?, bucketCount: Int, pingIDs: [Int64], offsets: [Int], name: String) {
        self.base = base
        self.bucketCount = bucketCount
        self.pingIDs = pingIDs
        self.offsets = offsets
        self.name = name
    }

    /// Number of rows.
    public var count: Int { pingIDs.count }

    /// Checks that `base[at..<end]` is a well-formed body for `bucketCount` buckets.
    static func validate(_ base: UnsafeRawPointer, _ start: Int, _ end: Int, bucketCount: Int) -> Bool {
        var at = start
        guard at < end else { return false }
        let flags = base.load(fromByteOffset: at, as: UInt8.self)
        at += 1
        guard flags < 32, let k = readVarint(base, &at, end), k <= UInt64(bucketCount) else { return false }
        var next: UInt64 = 0
        for _ in 0..<Int(k) {
            guard let gap = readVarint(base, &at, end), gap < UInt64(bucketCount) - next, readVarint(base, &at, end) != nil else { return false }
            next += gap + 1
        }
        for statistic in 0..<5 {
            if flags & (1 << statistic) != 0 {
                guard end - at >= 8 else { return false }
                at += 8
            } else {
                guard readVarint(base, &at, end) != nil else { return false }
            }
        }
        return at == end
    }

    /// The row of `pingID`, or nil when that ping does not carry this histogram in this layout.
    /// - Parameter hint: a row to try first (the previous lookup's row + 1 makes ascending scans O(1)).
    /// - Complexity: O(1) on a hint hit, else O(log count).
    @inline(__always) public func row(of pingID: Int64, hint: Int = 0) -> Int? {
        if hint >= 0 && hint < pingIDs.count && pingIDs[hint] == pingID { return hint }
        var low = 0, high = pingIDs.count
        while low < high {
            let mid = (low + high) / 2
            if pingIDs[mid] < pingID { low = mid + 1 } else { high = mid }
        }
        return low < pingIDs.count && pingIDs[low] == pingID ? low : nil
    }

    /// A direct `ping_id` → row table for lookups in any order (`row(of:)` is O(1) only on an ascending hint), or
    /// nil when the column is too sparse for one (ids span more than 4× its rows, or over 2^28).
    /// - Complexity: O(span of ids) time and 4 bytes per id of memory.
    public func makeDenseIndex() -> DenseRowIndex? {
        guard let first = pingIDs.first, let last = pingIDs.last else { return nil }
        let span = Int(last - first) + 1
        guard span <= 4 * pingIDs.count, span <= 1 << 28 else { return nil }
        var table = [Int32](repeating: -1, count: span)
        for (row, id) in pingIDs.enumerated() { table[Int(id - first)] = Int32(row) }
        return DenseRowIndex(first: first, table: table)
    }

    /// Calls `body(bucket, count)` for each nonzero bucket of row `row`, ascending; returns the offset of the
    /// statistics and the flags.
    @inline(__always) private func forEachNonzero(row: Int, _ body: (Int, Int64) -> Void) -> (at: Int, flags: UInt8) {
        guard let base else { return (0, 0) }
        var at = offsets[row]
        let end = offsets[row + 1]
        let flags = base.load(fromByteOffset: at, as: UInt8.self)
        at += 1
        let k = readVarint(base, &at, end) ?? 0
        var next = 0
        for _ in 0..<Int(k) {
            let gap = Int(readVarint(base, &at, end) ?? 0)
            let count = unzigzag(readVarint(base, &at, end) ?? 0)
            body(next + gap, count)
            next += gap + 1
        }
        return (at, flags)
    }

    /// Adds row `row`'s bucket counts into `sums` (length ≥ `bucketCount`).
    /// - Returns: the index of a bucket whose sum overflowed Int64 (the sums are then partly updated), or nil.
    @inline(__always) public func addCounts(row: Int, into sums: UnsafeMutablePointer<Int64>) -> Int? {
        var overflowed: Int?
        _ = forEachNonzero(row: row) { bucket, count in
            let (value, overflow) = sums[bucket].addingReportingOverflow(count)
            if overflow { overflowed = overflowed ?? bucket } else { sums[bucket] = value }
        }
        return overflowed
    }

    /// The bucket counts of row `row` (length `bucketCount`); allocates.
    public func counts(row: Int) -> [Int64] {
        var result = [Int64](repeating: 0, count: bucketCount)
        _ = forEachNonzero(row: row) { bucket, count in result[bucket] = count }
        return result
    }

    /// The five statistics of row `row` (0 sum, 1 log_sum, 2 log_sum_squares, 3 sum_squares_lo, 4 sum_squares_hi).
    public func statistics(row: Int) -> [HistogramStatistic] {
        var result: [HistogramStatistic] = []
        result.reserveCapacity(5)
        forEachStatistic(row: row) { _, statistic in result.append(statistic) }
        return result
    }

    /// Calls `body(index, statistic)` for the five statistics of row `row`, in order; allocates nothing.
    @inline(__always) public func forEachStatistic(row: Int, _ body: (Int, HistogramStatistic) -> Void) {
        guard let base else { return }
        var (at, flags) = forEachNonzero(row: row) { _, _ in }
        let end = offsets[row + 1]
        for statistic in 0..<5 {
            if flags & (1 << statistic) != 0 {
                let bits = at + 8 <= end ? UInt64(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt64.self)) : 0
                at += 8
                body(statistic, .real(Double(bitPattern: bits)))
            } else {
                body(statistic, .integer(unzigzag(readVarint(base, &at, end) ?? 0)))
            }
        }
    }

    /// Row `row` as the storage-format array (`[b0…b(n-1), sum, log_sum, log_sum_squares, lo, hi]`); allocates.
    /// For tests and display.
    public func storageArray(row: Int) -> [HistogramStatistic] {
        counts(row: row).map { .integer($0) } + statistics(row: row)
    }

    /// Statistic `index` of row `row`.
    public func statistic(row: Int, index: Int) -> HistogramStatistic { statistics(row: row)[index] }
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
        let state: [String: ColumnEntry]
        if store.isReadOnly || !repair {
            guard let checked = try ColumnMaintenance.check(store: store, repair: false) else {
                throw HistogramColumnError.columnFile(path: ColumnFormat.directory(storePath: store.path),
                                                      reason: "column files missing or out of date (an import with --no-histogram-columns, an interrupted reindex, or payloads changed by UPDATE)")
            }
            state = checked
        } else if let checked = try ColumnMaintenance.check(store: store, repair: false) {
            state = checked   // usable as committed: a running import's uncommitted tail is not cut by a reader
        } else {
            state = try ColumnMaintenance.ensureConsistent(store: store).state   // takes the writer lock
        }
        let directory = ColumnFormat.directory(storePath: store.path)
        var byName: [String: [HistogramColumn]] = [:]
        for (fileName, entry) in state {
            let column = try HistogramColumn(path: directory + "/" + fileName, name: entry.histogramName,
                                             bucketCount: entry.bucketCount, state: entry.state)
            byName[entry.histogramName, default: []].append(column)
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

/// `ping_id` → row of one column as a table (`HistogramRows.makeDenseIndex`).
public struct DenseRowIndex: Sendable {
    let first: Int64
    let table: [Int32]

    /// The row of `pingID`, nil when the column has none for it. O(1).
    @inline(__always) public func row(of pingID: Int64) -> Int? {
        let offset = pingID &- first
        guard offset >= 0, offset < Int64(table.count) else { return nil }
        let row = table[Int(offset)]
        return row < 0 ? nil : Int(row)
    }
}
