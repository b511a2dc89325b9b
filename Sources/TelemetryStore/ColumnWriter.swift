import Foundation
import TelemetryCompression
import TelemetryConvert
#if canImport(Glibc)
import Glibc
#endif

/// Appends histogram rows to the column files of one store (`ColumnFormat`), from the import's writer thread.
///
/// Protocol per imported source file (docs/sql.md "Kill safety"): `truncate(beyond:)` after the file's old pings
/// are deleted, `append` per inserted ping, then `flush()` and `commitState(on:)` *inside* the file's
/// transaction, before COMMIT. Rows are on disk before the pings commit; rows of a rolled-back file are beyond
/// the committed state in `store_meta` and are cut off by the next `ColumnMaintenance.ensureConsistent`.
///
/// - Important: Not `Sendable`; owned by the writer thread.
final class ColumnWriter {
    struct Column {
        var fileName: String
        /// The name's bytes as the first ping carrying it spelled them (fast matching in `append`).
        var name: [UInt8]
        /// The name as recorded in the metadata (`ColumnEntry.histogramName`).
        var histogramName: String
        var bucketCount: Int
        var state: ColumnState
        var pending: [UInt8] = []
        var pendingRows = 0
        var pendingLast: Int64 = 0

        var entry: ColumnEntry { ColumnEntry(fileName: fileName, histogramName: histogramName, bucketCount: bucketCount, state: state) }
    }
    struct HistogramKey: Hashable {
        var name: String
        var bucketCount: Int
    }
    let directory: String
    private(set) var columns: [Column] = []
    /// FNV-1a of (name bytes, n) → slot in `columns`; `byHistogram` resolves hash collisions and spellings.
    private var slots: [UInt64: Int] = [:]
    private var byHistogram: [HistogramKey: Int] = [:]
    private var fileNames: Set<String> = []
    private var commitStatement: Statement?

    /// Takes over the column files listed in `committed` (file name → entry), already consistent.
    ///
    /// No file stays open between calls: a payload with thousands of histogram names costs files, never
    /// descriptors (a hostile ping cannot exhaust the process's descriptors).
    init(storePath: String, committed: [String: ColumnEntry]) throws {
        directory = ColumnFormat.directory(storePath: storePath)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (fileName, entry) in committed.sorted(by: { $0.key < $1.key }) {
            register(Column(fileName: fileName, name: Array(entry.histogramName.utf8), histogramName: entry.histogramName,
                            bucketCount: entry.bucketCount, state: entry.state))
        }
    }

    private func register(_ column: Column) {
        let slot = columns.count
        columns.append(column)
        byHistogram[HistogramKey(name: column.histogramName, bucketCount: column.bucketCount)] = slot
        fileNames.insert(column.fileName)
        let key = column.name.withUnsafeBytes { Self.key($0, column.bucketCount) }
        if slots[key] == nil { slots[key] = slot }
    }

    @inline(__always) static func key(_ name: UnsafeRawBufferPointer, _ n: Int) -> UInt64 {
        var hash: UInt64 = 0xcbf29ce484222325
        for byte in name { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
        return (hash ^ UInt64(truncatingIfNeeded: n)) &* 0x100000001b3
    }

    /// The committed entry of every column (file name → entry), as `commitState` records it.
    var state: [String: ColumnEntry] {
        Dictionary(uniqueKeysWithValues: columns.map { ($0.fileName, $0.entry) })
    }

    private func path(_ column: Column) -> String { directory + "/" + column.fileName }

    /// Opens `column`'s file for writing; `create` makes (or empties) it.
    private func open(_ column: Column, create: Bool = false) throws -> Int32 {
        let fd = Glibc.open(path(column), create ? (O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC) : (O_RDWR | O_CLOEXEC), 0o644)
        guard fd >= 0 else {
            throw HistogramColumnError.columnFile(path: path(column), reason: "cannot \(create ? "create" : "open") (errno \(errno))")
        }
        return fd
    }

    /// Drops rows whose ping_id is above `maxPingID` (the highest ping_id in the store): they belong to pings
    /// deleted or rolled back, and SQLite may hand their ids out again. The kept rows go to a new file renamed over
    /// the old one: readers that mapped the old file keep reading it (truncating a mapped file would kill them
    /// with SIGBUS).
    func truncate(beyond maxPingID: Int64) throws {
        for slot in columns.indices where columns[slot].state.lastPingID > maxPingID {
            var column = columns[slot]
            let path = path(column)
            var data = [UInt8](repeating: 0, count: column.state.bytes)
            let oldFD = try open(column)
            defer { close(oldFD) }
            guard data.isEmpty || pread(oldFD, &data, data.count, off_t(ColumnFormat.headerBytes)) == data.count else {
                throw HistogramColumnError.columnFile(path: path, reason: "cannot read (errno \(errno))")
            }
            var kept = ColumnState(rows: 0, bytes: 0, lastPingID: 0, crc: 0)
            data.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return }
                var at = 0
                var id: Int64 = 0
                while at < raw.count, let delta = readVarint(base, &at, raw.count), let length = readVarint(base, &at, raw.count),
                      length <= UInt64(raw.count - at) {
                    id += Int64(truncatingIfNeeded: delta)
                    if id > maxPingID { break }
                    at += Int(length)
                    kept = ColumnState(rows: kept.rows + 1, bytes: at, lastPingID: id, crc: 0)
                }
                kept.crc = CRC64.update(0, UnsafeRawBufferPointer(rebasing: raw[0..<kept.bytes]))
            }
            let temporary = path + ".tmp"
            let fd = Glibc.open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw HistogramColumnError.columnFile(path: temporary, reason: "cannot create (errno \(errno))") }
            defer { close(fd) }
            column.state = kept
            column.pending.removeAll()
            column.pendingRows = 0
            try writeHeader(column, fd: fd, path: temporary)
            let written = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, kept.bytes, off_t(ColumnFormat.headerBytes)) }
            guard kept.bytes == 0 || written == kept.bytes, rename(temporary, path) == 0 else {
                unlink(temporary)
                throw HistogramColumnError.columnFile(path: path, reason: "cannot rewrite (errno \(errno))")
            }
            columns[slot] = column
        }
    }

    /// Queues a row per histogram of one ping (`EncodedHistograms`, from `PingParser`); creates a column file
    /// on a histogram name/layout's first row.
    /// - Throws: `HistogramColumnError.columnFile` when a new file cannot be created.
    func append(pingID: Int64, encoded: UnsafeRawBufferPointer) throws {
        for (position, entry) in EncodedHistograms(bytes: encoded).enumerated() {
            // Pings of one kind list their histograms in the same order: try the previous ping's column at this
            // position before hashing the name.
            let slot: Int
            if position < predicted.count, matches(predicted[position], entry.name, entry.bucketCount) {
                slot = predicted[position]
            } else {
                slot = try self.slot(entry.name, entry.bucketCount)
                if position < predicted.count { predicted[position] = slot } else { predicted.append(slot) }
            }
            let last = columns[slot].pendingRows > 0 ? columns[slot].pendingLast : columns[slot].state.lastPingID
            guard pingID > last else { continue }   // ping ids only grow; never write a row out of order
            appendVarint(UInt64(pingID - last), to: &columns[slot].pending)
            appendVarint(UInt64(entry.body.count), to: &columns[slot].pending)
            columns[slot].pending.append(contentsOf: entry.body)
            columns[slot].pendingRows += 1
            columns[slot].pendingLast = pingID
        }
    }

    /// Column slot per histogram position of the previous ping (`append`).
    private var predicted: [Int] = []

    private func matches(_ slot: Int, _ name: UnsafeRawBufferPointer, _ n: Int) -> Bool {
        guard columns[slot].bucketCount == n, columns[slot].name.count == name.count else { return false }
        return columns[slot].name.withUnsafeBytes { stored in
            name.isEmpty || memcmp(stored.baseAddress!, name.baseAddress!, name.count) == 0
        }
    }

    private func slot(_ name: UnsafeRawBufferPointer, _ n: Int) throws -> Int {
        let key = Self.key(name, n)
        if let slot = slots[key], columns[slot].bucketCount == n, columns[slot].name.elementsEqual(name) { return slot }
        // Bytes that are not UTF-8 (never from simdjson, which validates) become U+FFFD: one column per decoded name.
        let text = String(decoding: name, as: UTF8.self)
        if let slot = byHistogram[HistogramKey(name: text, bucketCount: n)] { return slot }
        var collision = 0
        var fileName = ColumnFormat.fileName(name: text, bucketCount: n)
        while fileNames.contains(fileName) {
            collision += 1
            fileName = ColumnFormat.fileName(name: text, bucketCount: n, collision: collision)
        }
        let column = Column(fileName: fileName, name: Array(name), histogramName: text, bucketCount: n,
                            state: ColumnState(rows: 0, bytes: 0, lastPingID: 0, crc: 0))
        let fd = try open(column, create: true)
        defer { close(fd) }
        try writeHeader(column, fd: fd, path: path(column))
        register(column)
        return columns.count - 1
    }

    /// Writes queued rows, then each touched file's header.
    /// - Throws: `HistogramColumnError.columnFile` when a write fails (disk full…).
    func flush() throws {
        for slot in columns.indices where columns[slot].pendingRows > 0 {
            var column = columns[slot]
            let fd = try open(column)
            defer { close(fd) }
            let written = column.pending.withUnsafeBytes {
                pwrite(fd, $0.baseAddress, $0.count, off_t(ColumnFormat.headerBytes + column.state.bytes))
            }
            guard written == column.pending.count else {
                throw HistogramColumnError.columnFile(path: path(column), reason: "short write (errno \(errno))")
            }
            let crc = column.pending.withUnsafeBytes { CRC64.update(column.state.crc, $0) }
            column.state = ColumnState(rows: column.state.rows + column.pendingRows, bytes: column.state.bytes + column.pending.count,
                                       lastPingID: column.pendingLast, crc: crc)
            column.pending.removeAll(keepingCapacity: true)
            column.pendingRows = 0
            try writeHeader(column, fd: fd, path: path(column))
            columns[slot] = column
        }
    }

    private func writeHeader(_ column: Column, fd: Int32, path: String) throws {
        let header = ColumnFormat.header(bucketCount: column.bucketCount, rowCount: column.state.rows, byteCount: column.state.bytes)
        let written = header.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        guard written == header.count else {
            throw HistogramColumnError.columnFile(path: path, reason: "cannot write header (errno \(errno))")
        }
    }

    /// Records the column entries as committed (`store_meta.histogram_columns`), in the caller's transaction.
    func commitState(on connection: Connection) throws {
        let text = encodeColumnEntries(columns.lazy.map(\.entry))
        if commitStatement == nil { commitStatement = try connection.prepare("INSERT OR REPLACE INTO store_meta(key, value) VALUES (?1, ?2)") }
        guard let statement = commitStatement else { return }
        statement.reset()
        try statement.bind(histogramColumnsMetaKey, at: 1)
        try statement.bind(text, at: 2)
        _ = try statement.step()
    }
}

/// Checks and repairs the column files of a store against `store_meta.histogram_columns`.
public enum ColumnMaintenance {
    /// The directory of the column files of the store at `storePath` (`<store>.columns`).
    public static func directory(storePath: String) -> String { ColumnFormat.directory(storePath: storePath) }

    /// The column files the store's metadata lists as committed (file name → entry), read without touching the
    /// files: what `telemetry check` verifies each file against (header magic and n, length ≥ 32 + bytes, rows,
    /// CRC-64 of the row bytes — `HistogramColumn.rows()` does the row-level check).
    /// - Returns: nil when no state is recorded or it is unreadable (the columns then need `reindex`; an empty
    ///   store with no state returns `[:]`).
    /// - Throws: `StoreError.sqlite`.
    public static func committedColumns(store: Store) throws -> [String: ColumnEntry]? {
        guard let text = try store.connection.scalarText("SELECT value FROM store_meta WHERE key='\(histogramColumnsMetaKey)'") else {
            return (try store.connection.scalarInt("SELECT count(*) FROM pings") ?? 0) == 0 ? [:] : nil
        }
        return decodeColumnEntries(text)
    }

    /// Makes the column files match the committed state and returns it (file name → entry):
    /// rows beyond the committed counts (an interrupted import) are cut off; a missing column state (a store made
    /// before columns existed), a missing file, a bad header or a file shorter than its committed rows triggers
    /// a rebuild from the payload JSON (`rebuild`).
    /// - Returns: the state and whether a rebuild happened.
    /// - Throws: `StoreError.sqlite`, `HistogramColumnError.columnFile`.
    @discardableResult
    public static func ensureConsistent(store: Store) throws -> (state: [String: ColumnEntry], rebuilt: Bool) {
        try store.withWriterLock("column repair") {
            if let state = try check(store: store) { return (state, false) }
            return (try rebuild(store: store), true)
        }
    }

    /// The committed state if the files are usable (after cutting uncommitted rows), nil if a rebuild is needed.
    /// - Parameter repair: cut uncommitted tails; false for readers (a concurrent import may be appending).
    static func check(store: Store, repair: Bool = true) throws -> [String: ColumnEntry]? {
        guard let object = try committedColumns(store: store) else { return nil }
        let directory = ColumnFormat.directory(storePath: store.path)
        let present = Set((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
        for (fileName, entry) in object {
            let committed = entry.state
            guard present.contains(fileName) else { return nil }
            let path = directory + "/" + fileName
            let fd = open(path, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            var header = [UInt8](repeating: 0, count: ColumnFormat.headerBytes)
            guard pread(fd, &header, header.count, 0) == header.count, Array(header[0..<8]) == ColumnFormat.magic else { return nil }
            let n = header.withUnsafeBytes { Int(Int64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: Int64.self))) }
            let headerRows = header.withUnsafeBytes { Int(Int64(littleEndian: $0.loadUnaligned(fromByteOffset: 16, as: Int64.self))) }
            let headerBytes = header.withUnsafeBytes { Int(Int64(littleEndian: $0.loadUnaligned(fromByteOffset: 24, as: Int64.self))) }
            var info = stat()
            guard fstat(fd, &info) == 0, n == entry.bucketCount, headerRows >= committed.rows, headerBytes >= committed.bytes else { return nil }
            let committedBytes = ColumnFormat.headerBytes + committed.bytes
            guard Int(info.st_size) >= committedBytes else { return nil }
            if headerRows != committed.rows || Int(info.st_size) != committedBytes {
                guard repair && !store.isReadOnly else { continue }
                let fixed = ColumnFormat.header(bucketCount: n, rowCount: committed.rows, byteCount: committed.bytes)
                _ = fixed.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
                _ = ftruncate(fd, off_t(committedBytes))
            }
        }
        return object
    }

    /// Rebuilds every column file (`rebuild(store:)`) and returns the number of files and of rows.
    public static func rebuildAll(store: Store) throws -> (files: Int, rows: Int) {
        let state = try store.withWriterLock("reindex") { try rebuild(store: store) }
        return (state.count, state.values.reduce(0) { $0 + $1.state.rows })
    }

    /// Rebuilds every column file from the payload JSON of the store's pings and commits the state.
    /// - Returns: the new state (file name → entry).
    /// - Complexity: one pass over all payloads; O(rows) disk writes.
    @discardableResult
    public static func rebuild(store: Store) throws -> [String: ColumnEntry] {
        try store.withWriterLock("column rebuild") { try rebuildLocked(store: store) }
    }

    private static func rebuildLocked(store: Store) throws -> [String: ColumnEntry] {
        let directory = ColumnFormat.directory(storePath: store.path)
        try? FileManager.default.removeItem(atPath: directory)
        let writer = try ColumnWriter(storePath: store.path, committed: [:])
        let parser = PingParser(fields: [], histograms: true)
        try store.connection.transaction {
            let statement = try store.connection.prepare("SELECT ping_id, payload FROM pings ORDER BY ping_id")
            var pending = 0
            while try statement.step() {
                let pingID = statement.columnInt64(0)
                try statement.withColumnBytes(1) { json in
                    guard let parsed = try? parser.parse(json, padded: false) else { return }
                    try writer.append(pingID: pingID, encoded: parsed.histograms)
                }
                pending += 1
                if pending >= 2000 { try writer.flush(); pending = 0 }
            }
            try writer.flush()
            try writer.commitState(on: store.connection)
        }
        store.histogramColumnsChanged()
        return writer.state
    }
}
