import CSQLite
import Foundation
import TelemetryCompression
import TelemetryConvert
import TelemetryCore

/// Options of `Importer.run`.
public struct ImportOptions: Sendable {
    /// A job filter (`spec/storage.md` §4): files it excludes are skipped without being opened.
    public var filter: DimensionSchema?
    /// Parser threads (decompression + JSON validation); the store has one writer besides.
    public var jobs: Int
    /// Longest accepted line, in bytes; longer lines are `too_long` bad lines.
    public var maxLineBytes: Int
    /// Converts the records of raw submission logs met during the walk (files starting with a raw-log record),
    /// so that one import goes from raw logs to a queryable store. Nil: raw logs are converted with no histogram
    /// definitions (pings with histograms are rejected as `unknown_revision`).
    public var payloadConverter: PayloadConverter?
    /// Append each ping's histograms to the column files during the import (docs/sql.md). When false the import
    /// does not decode histograms and marks the column files out of date instead; they are rebuilt from the
    /// payload JSON on the first histogram query or by `telemetry reindex`.
    public var histogramColumns = true
    /// Read every file found whatever its state (`import --force`), replacing its earlier import.
    public var force = false
    /// Re-read files whose records were rejected for want of histogram definitions (status
    /// `missing_definitions`) even when unchanged: set when definitions are available now.
    public var retryMissingDefinitions = false

    public init(filter: DimensionSchema? = nil, jobs: Int = ProcessInfo.processInfo.activeProcessorCount,
                maxLineBytes: Int = LineReader.defaultMaxLineBytes, payloadConverter: PayloadConverter? = nil) {
        self.filter = filter
        self.jobs = max(1, jobs)
        self.maxLineBytes = maxLineBytes
        self.payloadConverter = payloadConverter
    }
}

/// Progress of a running import, reported to the caller's callback (on the writer thread).
public struct ImportProgress: Sendable {
    public var filesTotal = 0
    public var filesDone = 0
    public var pings = 0
    public var badLines = 0
    /// Compressed bytes of the files done (of `compressedBytesTotal`).
    public var compressedBytesDone = 0
    public var compressedBytesTotal = 0
    /// Decompressed bytes imported so far.
    public var uncompressedBytes = 0
    public var elapsedSeconds = 0.0
}

/// What an import did. Counts are for this run only.
public struct ImportSummary: Sendable, Equatable {
    /// Files found under the roots (after the filter).
    public var filesFound = 0
    /// Files read and written to the store (new or changed).
    public var filesImported = 0
    /// Of `filesImported`, files that replaced an earlier import of the same path.
    public var filesReplaced = 0
    /// Files skipped because size and mtime (or content hash) are unchanged since their last import.
    public var filesUnchanged = 0
    /// Of `filesUnchanged`, files whose earlier import failed (damaged, path error, …): still not (fully) in the
    /// store, reported again so that a re-run does not hide them.
    public var filesUnchangedWithErrors = 0
    /// Of `filesUnchangedWithErrors`, their paths (in walk order).
    public var unchangedWithErrorsPaths: [String] = []
    /// Files read again, although unchanged, because their records lacked histogram definitions at an earlier
    /// import (status `missing_definitions`) and definitions are available now.
    public var filesRetried = 0
    /// Files imported before and read again because of `ImportOptions.force`.
    public var filesForced = 0
    /// Files imported in this run with records rejected for want of histogram definitions (`unknown_revision`):
    /// recorded as `missing_definitions`, so the next import with definitions reads them again.
    public var filesMissingDefinitions: [String] = []
    /// Raw logs of `telemetry serve` still open (not yet renamed `.finished`, docs/ingest.md): skipped, so that no
    /// submission is counted twice; imported once finished.
    public var openLogsSkipped: [String] = []
    /// `telemetry convert`'s rejected-record files (`<root>/errors/*.errors.jsonl`, docs/convert.md): not part of
    /// the storage layout, skipped.
    public var convertErrorFilesSkipped = 0
    /// Roots under which there is no file at all (a misspelt or empty path).
    public var emptyRoots: [String] = []
    /// Files the filter excluded (never opened).
    public var filesExcluded = 0
    /// Raw-log records the filter excluded (raw logs are opened: their partitions are in the pings).
    public var recordsExcluded = 0
    /// Pings (records) written.
    public var pings = 0
    /// Bad lines by reason (`no_tab`, `invalid_json`, `invalid_utf8`, `too_long`, `invalid_id`).
    public var badLines: [String: Int] = [:]
    /// Warnings by reason (`duplicate_key`).
    public var warnings: [String: Int] = [:]
    /// File-level failures: path and message (damage, unreadable, path not in the layout).
    public var fileErrors: [FileError] = []
    /// Entries under the roots that are not regular files (FIFOs, sockets, devices, dangling symlinks, symlinks
    /// out of their root): reported, never opened.
    public var skippedInputs: [SkippedInput] = []
    /// Files with nothing in them (0 bytes, or a compressed stream of nothing): noted, not errors. A file at a
    /// storage-layout path is still recorded (it replaces what an earlier version of it imported).
    public var emptyFiles: [String] = []
    public var compressedBytes = 0
    public var uncompressedBytes = 0
    public var seconds = 0.0
    /// True when the run was interrupted before all files were done (the done ones are committed).
    public var interrupted = false

    public struct FileError: Sendable, Equatable {
        public var path: String
        public var reason: String
        public var message: String
    }

    public var badLineCount: Int { badLines.values.reduce(0, +) }
    /// True when anything failed: a bad line, a damaged or unreadable file, a path outside the layout, an entry
    /// that is not a regular file, a root with no file.
    public var hadFailures: Bool {
        badLineCount > 0 || !fileErrors.isEmpty || !skippedInputs.isEmpty || !emptyRoots.isEmpty || interrupted
    }
}

/// What an import is about to read, after the walk and the skip of unchanged files (`Importer.run`'s `planned`).
public struct ImportPlanSummary: Sendable, Equatable {
    /// Files to read (new, changed or retried).
    public var filesToRead = 0
    /// Of `filesToRead`, raw submission logs (converted record by record with `ImportOptions.payloadConverter`).
    public var rawLogsToRead = 0
}

/// Imports storage-format files into a `Store` (docs/store.md "Import").
///
/// Files are read in parallel by `options.jobs` parser threads (decompress, split lines, validate JSON with
/// simdjson) and written by the calling thread, one SQLite transaction per source file: a file is either
/// wholly in the store or not at all, so a killed import leaves a consistent store and a re-run completes it.
/// Memory stays bounded: each file streams in chunks of about 4 MiB through a queue of at most 4 chunks, and
/// parsers run at most `2 × jobs` files ahead of the writer.
public final class Importer {
    public let store: Store
    public let options: ImportOptions

    public init(store: Store, options: ImportOptions = ImportOptions()) {
        self.store = store
        self.options = options
    }

    /// Imports every file under `roots`.
    /// - Parameters:
    ///   - planned: called once on this thread before the first file is read, with what will be read.
    ///   - progress: called on this thread about 10 times a second and once at the end.
    ///   - isCancelled: polled between chunks; when true the file in progress is rolled back and the run ends.
    /// - Throws: `StoreError.inputNotFound` for a missing root (before anything is written), `StoreError.sqlite`
    ///   when the store cannot be written (disk full, ...). Bad lines and damaged files are not thrown: they are
    ///   counted in the summary and recorded in `import_errors`.
    public func run(roots: [String], planned: ((ImportPlanSummary) -> Void)? = nil, progress: ((ImportProgress) -> Void)? = nil,
                    isCancelled: @escaping @Sendable () -> Bool = { false }) throws -> ImportSummary {
        // One writer at a time (docs/store.md): the files to read are decided under the lock, so a second import
        // of the same tree waits and then finds them imported.
        try store.withWriterLock("import") {
            try runLocked(roots: roots, planned: planned, progress: progress, isCancelled: isCancelled)
        }
    }

    private func runLocked(roots: [String], planned: ((ImportPlanSummary) -> Void)?, progress: ((ImportProgress) -> Void)?,
                           isCancelled: @escaping @Sendable () -> Bool) throws -> ImportSummary {
        let started = Date()
        var summary = ImportSummary()
        var candidates: [ImportCandidate] = []
        var excluded = 0
        var skipped = LayoutWalker.Skipped()
        for root in roots {
            let before = (candidates.count, excluded, summary.skippedInputs.count, skipped.openLogs.count, skipped.convertErrorFiles)
            candidates += try LayoutWalker.walk(root: root, schema: store.schema, filter: options.filter, excluded: &excluded,
                                                skipped: &summary.skippedInputs, notes: &skipped)
            if (candidates.count, excluded, summary.skippedInputs.count, skipped.openLogs.count, skipped.convertErrorFiles) == before {
                summary.emptyRoots.append(root)
            }
        }
        summary.openLogsSkipped = skipped.openLogs
        summary.convertErrorFilesSkipped = skipped.convertErrorFiles
        summary.filesExcluded = excluded
        summary.filesFound = candidates.count

        // Decide what to read: unchanged files are skipped; a touched file with the same content hash is too.
        let known = try knownFiles()
        var work: [(ImportCandidate, KnownFile?)] = []
        var reread = Set<String>()   // unchanged files read again (forced or retried): not "replaced"
        for candidate in candidates {
            // A file is the same file when its path under the same root is (so its storage-layout dimensions are)
            // and its size and mtime or content hash are: the same file imported from another root (a wrong root
            // gives a path_error or other dimensions) is read again.
            let previous = known[candidate.path]
            let sameRoot = previous?.base == candidate.base
            if previous != nil, options.force {
                summary.filesForced += 1
                reread.insert(candidate.path)
            } else if options.retryMissingDefinitions, previous?.status == Self.missingDefinitionsStatus {
                summary.filesRetried += 1
                reread.insert(candidate.path)
            } else if let previous, sameRoot, previous.size == candidate.size, previous.mtime == candidate.mtimeNanoseconds {
                summary.filesUnchanged += 1
                if previous.status != "ok" { summary.filesUnchangedWithErrors += 1; summary.unchangedWithErrorsPaths.append(candidate.path) }
                continue
            } else if let previous, sameRoot, previous.size == candidate.size, let hash = previous.hash,
               let current = try? DecompressingReader.crc64(ofFile: candidate.path), Self.hex(current) == hash {
                try store.connection.execute("UPDATE source_files SET mtime_ns = \(candidate.mtimeNanoseconds) WHERE file_id = \(previous.fileID)")
                summary.filesUnchanged += 1
                if previous.status != "ok" { summary.filesUnchangedWithErrors += 1; summary.unchangedWithErrorsPaths.append(candidate.path) }
                continue
            }
            if case let .failure(error) = candidate.dimensions {
                // An empty file cannot be told raw log from storage file: nothing to import, not a path error.
                if candidate.size == 0 || LayoutWalker.decompressesToNothing(candidate.path) {
                    summary.emptyFiles.append(candidate.path)
                    continue
                }
                try recordPathError(candidate, previous: previous, error: error, summary: &summary)
                continue
            }
            work.append((candidate, previous))
        }

        planned?(ImportPlanSummary(filesToRead: work.count, rawLogsToRead: work.count { $0.0.isRawLog }))
        var state = ImportProgress()
        state.filesTotal = work.count
        state.compressedBytesTotal = work.reduce(0) { $0 + $1.0.size }
        let pipeline = ImportPipeline(files: work.map(\.0), options: options, fields: store.activeInfoColumns.map(\.field),
                                      schema: store.schema)
        pipeline.start()
        defer { pipeline.cancel(); pipeline.join() }

        let writer = try PingWriter(store: store)
        // Histogram columns (docs/sql.md): repaired or rebuilt first, then written within each file's transaction.
        let columns: ColumnWriter? = options.histogramColumns
            ? try ColumnWriter(storePath: store.path, committed: ColumnMaintenance.ensureConsistent(store: store).state) : nil
        writer.columns = columns
        defer { store.histogramColumnsChanged() }
        var columnsMarkedStale = false
        var lastReport = Date.distantPast
        for (index, (candidate, previous)) in work.enumerated() {
            if isCancelled() { summary.interrupted = true; break }
            guard case let .success(dimensions) = candidate.dimensions else { continue }   // raw logs: [] (per record)
            let fileStarted = Date()
            var fileID: Int64 = 0
            var records = 0, badLines = 0, warnings = 0, missingDefinitions = 0
            var uncompressed = 0
            var finished = false
            try store.connection.execute("BEGIN IMMEDIATE")
            do {
                fileID = try writer.beginFile(candidate, previous: previous?.fileID)
                if let columns {
                    try columns.truncate(beyond: try store.connection.scalarInt("SELECT coalesce(max(ping_id), 0) FROM pings") ?? 0)
                } else if !columnsMarkedStale {
                    // Columns no longer cover every ping: forget their committed state (rebuilt when next needed).
                    try store.connection.execute("DELETE FROM store_meta WHERE key = '\(histogramColumnsMetaKey)'")
                    columnsMarkedStale = true
                }
                while !finished {
                    if isCancelled() { throw StoreError.interrupted }
                    switch pipeline.next(file: index) {
                    case let .records(chunk):
                        try writer.write(chunk, fileID: fileID, dimensions: dimensions, path: candidate.path)
                        records += chunk.records.count
                        badLines += chunk.badLines.count
                        warnings += chunk.warnings.count
                        uncompressed += chunk.uncompressedBytes
                        summary.recordsExcluded += chunk.excludedRecords
                        for bad in chunk.badLines {
                            summary.badLines[bad.reason, default: 0] += 1
                            if bad.reason == RecordCategory.unknownRevision.rawValue { missingDefinitions += 1 }
                        }
                        for warning in chunk.warnings { summary.warnings[warning.reason, default: 0] += 1 }
                        state.pings += chunk.records.count
                        state.badLines += chunk.badLines.count
                        state.uncompressedBytes += chunk.uncompressedBytes
                    case let .end(end):
                        let status: String
                        if let failure = end.failure {
                            status = failure.reason
                            summary.fileErrors.append(.init(path: candidate.path, reason: failure.reason, message: failure.message))
                            try writer.recordError(fileID: fileID, path: candidate.path, line: failure.line, offset: failure.offset,
                                                   severity: "error", reason: failure.reason, message: failure.message, documentID: nil)
                        } else if missingDefinitions > 0 {
                            status = Self.missingDefinitionsStatus
                            summary.filesMissingDefinitions.append(candidate.path)
                        } else {
                            status = "ok"
                            if records == 0 && badLines == 0 && uncompressed == 0 { summary.emptyFiles.append(candidate.path) }
                        }
                        try writer.endFile(fileID: fileID, hash: end.hash.map(Self.hex), format: end.format?.rawValue, status: status,
                                           records: records, badLines: badLines, warnings: warnings,
                                           uncompressedBytes: uncompressed, seconds: Date().timeIntervalSince(fileStarted))
                        finished = true
                    }
                    if let progress, Date().timeIntervalSince(lastReport) > 0.1 {
                        lastReport = Date()
                        state.elapsedSeconds = Date().timeIntervalSince(started)
                        progress(state)
                    }
                }
                try columns?.flush()
                try columns?.commitState(on: store.connection)
                try store.connection.execute("COMMIT")
            } catch {
                try? store.connection.execute("ROLLBACK")
                if case StoreError.interrupted = error { summary.interrupted = true; break }
                throw error
            }
            pipeline.fileWritten(index)
            summary.filesImported += 1
            if previous != nil && !reread.contains(candidate.path) { summary.filesReplaced += 1 }
            summary.pings += records
            summary.compressedBytes += candidate.size
            summary.uncompressedBytes += uncompressed
            state.filesDone += 1
            state.compressedBytesDone += candidate.size
        }
        if summary.filesImported > 0 {
            try? store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            try? store.connection.execute("PRAGMA optimize")
            _ = try? PingIndex.current(store: store)   // the jobs' index, saved beside the store (rebuilt later if this fails)
        }
        summary.seconds = Date().timeIntervalSince(started)
        state.elapsedSeconds = summary.seconds
        progress?(state)
        return summary
    }

    /// `source_files.status` of a file imported with records rejected as `unknown_revision` (no definitions for
    /// their revision): imported, but read again by the next import that has definitions.
    public static let missingDefinitionsStatus = "missing_definitions"

    struct KnownFile {
        var fileID: Int64
        var size: Int
        var mtime: Int64
        var hash: String?
        var status: String
        var base: String
    }

    private func knownFiles() throws -> [String: KnownFile] {
        let statement = try store.connection.prepare("SELECT file_id, path, size, mtime_ns, content_hash, status, base FROM source_files")
        var known: [String: KnownFile] = [:]
        while try statement.step() {
            known[statement.columnText(1) ?? ""] = KnownFile(fileID: statement.columnInt64(0), size: Int(statement.columnInt64(2)),
                                                             mtime: statement.columnInt64(3), hash: statement.columnText(4),
                                                             status: statement.columnText(5) ?? "ok",
                                                             base: statement.columnText(6) ?? "")
        }
        return known
    }

    private func recordPathError(_ candidate: ImportCandidate, previous: KnownFile?, error: CoreError, summary: inout ImportSummary) throws {
        let writer = try PingWriter(store: store)
        let message = "\(error); the file was not imported"
        try store.connection.transaction {
            let fileID = try writer.beginFile(candidate, previous: previous?.fileID)
            try writer.recordError(fileID: fileID, path: candidate.path, line: nil, offset: nil, severity: "error",
                                   reason: "path_error", message: message, documentID: nil)
            try writer.endFile(fileID: fileID, hash: nil, format: nil, status: "path_error", records: 0, badLines: 0, warnings: 0,
                               uncompressedBytes: 0, seconds: 0)
        }
        summary.fileErrors.append(.init(path: candidate.path, reason: "path_error", message: message))
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

/// Writes chunks of parsed records to the store's tables. Reuses its prepared statements.
final class PingWriter {
    private let store: Store
    private let insertPing: Statement
    private let insertError: Statement
    private let upsertFile: Statement
    private let deletePings: Statement
    private let deleteErrors: Statement
    private let finishFile: Statement
    private let infoTypes: [String]
    private let dimensionCount: Int
    private let timestamp: String
    /// Histogram columns to append each inserted ping's histograms to (nil: none).
    var columns: ColumnWriter?

    init(store: Store) throws {
        self.store = store
        let c = store.connection
        let dims = store.schema.fieldNames.map(Store.quote)
        let info = store.activeInfoColumns.map { Store.quote($0.name) }
        let columns = ["file_id", "line", "document_id"] + dims + info + ["payload"]
        let placeholders = (1...columns.count).map { "?\($0)" }
        insertPing = try c.prepare("INSERT INTO pings(\(columns.joined(separator: ", "))) VALUES (\(placeholders.joined(separator: ", ")))")
        insertError = try c.prepare("""
            INSERT INTO import_errors(file_id, path, line, byte_offset, severity, reason, message, document_id, recorded_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
            """)
        upsertFile = try c.prepare("""
            INSERT INTO source_files(file_id, path, base, size, mtime_ns, status, imported_at) VALUES (?1, ?2, ?3, ?4, ?5, 'importing', ?6)
            ON CONFLICT(path) DO UPDATE SET base = excluded.base, size = excluded.size, mtime_ns = excluded.mtime_ns,
                status = 'importing', imported_at = excluded.imported_at
            """)
        deletePings = try c.prepare("DELETE FROM pings WHERE file_id = ?1")
        deleteErrors = try c.prepare("DELETE FROM import_errors WHERE file_id = ?1")
        finishFile = try c.prepare("""
            UPDATE source_files SET content_hash = ?2, format = ?3, status = ?4, record_count = ?5, bad_line_count = ?6,
                warning_count = ?7, uncompressed_bytes = ?8, import_seconds = ?9 WHERE file_id = ?1
            """)
        infoTypes = store.activeInfoColumns.map(\.sqlType)
        dimensionCount = store.schema.dimensions.count
        timestamp = ISO8601DateFormatter().string(from: Date())
    }

    /// Inserts or resets the `source_files` row; removes an earlier import's rows. Returns the file id.
    func beginFile(_ candidate: ImportCandidate, previous: Int64?) throws -> Int64 {
        if let previous {
            try deletePings.bind(previous, at: 1); try deletePings.step(); deletePings.reset()
            try deleteErrors.bind(previous, at: 1); try deleteErrors.step(); deleteErrors.reset()
        }
        try upsertFile.bind(previous, at: 1)
        try upsertFile.bind(candidate.path, at: 2)
        try upsertFile.bind(candidate.base, at: 3)
        try upsertFile.bind(Int64(candidate.size), at: 4)
        try upsertFile.bind(candidate.mtimeNanoseconds, at: 5)
        try upsertFile.bind(timestamp, at: 6)
        try upsertFile.step()
        upsertFile.reset()
        if let previous { return previous }
        return store.connection.lastInsertRowID
    }

    func write(_ chunk: RecordChunk, fileID: Int64, dimensions: [String], path: String) throws {
        try chunk.arena.withUnsafeBytes { arena in
            for record in chunk.records {
                var index: Int32 = 1
                try insertPing.bind(fileID, at: index); index += 1
                try insertPing.bind(Int64(record.line), at: index); index += 1
                try insertPing.bindText(UnsafeRawBufferPointer(rebasing: arena[record.idStart..<record.idEnd]), at: index); index += 1
                for value in record.dimensions ?? dimensions { try insertPing.bind(value, at: index); index += 1 }
                for (column, value) in record.info.enumerated() {
                    switch (value, infoTypes[column]) {
                    case (nil, _): try insertPing.bindNull(at: index)
                    case let (.integer(i)?, _): try insertPing.bind(i, at: index)
                    case let (.real(d)?, "INTEGER"): try insertPing.bind(d.rounded() == d ? Int64(exactly: d) : nil, at: index)
                    case let (.real(d)?, _): try insertPing.bind(d, at: index)
                    case let (.string(s)?, "INTEGER"): try insertPing.bind(Int64(s), at: index)
                    case let (value?, _): try insertPing.bind(value.text, at: index)
                    }
                    index += 1
                }
                try insertPing.bindTextNoCopy(UnsafeRawBufferPointer(rebasing: arena[record.payloadStart..<record.payloadEnd]), at: index)
                try insertPing.step()
                insertPing.reset()
                if record.histogramsEnd > record.histogramsStart {
                    try columns?.append(pingID: store.connection.lastInsertRowID,
                                        encoded: UnsafeRawBufferPointer(rebasing: arena[record.histogramsStart..<record.histogramsEnd]))
                }
            }
        }
        for bad in chunk.badLines {
            try recordError(fileID: fileID, path: path, line: bad.line, offset: bad.offset, severity: "error",
                            reason: bad.reason, message: bad.message, documentID: nil)
        }
        for warning in chunk.warnings {
            try recordError(fileID: fileID, path: path, line: warning.line, offset: warning.offset, severity: "warning",
                            reason: warning.reason, message: warning.message, documentID: warning.documentID)
        }
    }

    func recordError(fileID: Int64, path: String, line: Int?, offset: Int?, severity: String, reason: String,
                     message: String, documentID: String?) throws {
        try insertError.bind(fileID, at: 1)
        try insertError.bind(path, at: 2)
        try insertError.bind(line.map(Int64.init), at: 3)
        try insertError.bind(offset.map(Int64.init), at: 4)
        try insertError.bind(severity, at: 5)
        try insertError.bind(reason, at: 6)
        try insertError.bind(message, at: 7)
        try insertError.bind(documentID, at: 8)
        try insertError.bind(timestamp, at: 9)
        try insertError.step()
        insertError.reset()
    }

    func endFile(fileID: Int64, hash: String?, format: String?, status: String, records: Int, badLines: Int, warnings: Int,
                 uncompressedBytes: Int, seconds: Double) throws {
        try finishFile.bind(fileID, at: 1)
        try finishFile.bind(hash, at: 2)
        try finishFile.bind(format, at: 3)
        try finishFile.bind(status, at: 4)
        try finishFile.bind(Int64(records), at: 5)
        try finishFile.bind(Int64(badLines), at: 6)
        try finishFile.bind(Int64(warnings), at: 7)
        try finishFile.bind(Int64(uncompressedBytes), at: 8)
        try finishFile.bind(seconds, at: 9)
        try finishFile.step()
        finishFile.reset()
    }
}
