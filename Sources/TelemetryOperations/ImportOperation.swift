import Foundation
import TelemetryConvert
import TelemetryCore
import TelemetryStore

/// What to import and how: the options `telemetry import` and `.import` share.
public struct ImportRequest: Sendable {
    /// Local roots: storage-layout directories, storage files or raw logs (s3:// URLs are fetched by the caller
    /// first and passed as their cached files).
    public var roots: [String]
    /// Job filter (`spec/storage.md` §4): files it excludes are skipped unopened.
    public var filter: DimensionSchema?
    /// Parser threads.
    public var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Longest accepted line in bytes.
    public var maxLineBytes: Int = ImportOptions().maxLineBytes
    /// Write the histogram column files during the import.
    public var histogramColumns = true
    /// Histogram definitions given for this import: they replace what the store remembers (docs/sql.md). Nil
    /// fields keep the remembered value.
    public var histogramCache: String?
    public var histogramServer: String?
    /// Read every file under `roots` again whatever its state (`--force`).
    public var force = false

    public init(roots: [String], filter: DimensionSchema? = nil) {
        self.roots = roots
        self.filter = filter
    }
}

/// The import use case: the one path by which `telemetry import` and the REPL's `.import` write a store.
public enum ImportOperation {
    /// Imports `request.roots` into `store`.
    ///
    /// Raw logs are converted with the histogram definitions the store remembers, after `request`'s given
    /// cache/server (if any) has been remembered; when raw logs are to be read and there are none, `notice` gets
    /// `HistogramDefinitionSource.noDefinitionsWarning` before anything is read.
    /// - Parameters:
    ///   - notice: warnings and notes for standard error, called before and during the import.
    ///   - progress: the importer's progress, on this thread.
    ///   - isCancelled: polled between chunks.
    /// - Returns: the report; its `exitStatus` is 0 when everything asked for was imported, 1 when some file or
    ///   line failed, 2 when an environment failure (unreadable histogram cache file) stopped the run.
    /// - Throws: `StoreError` when the store cannot be read or written, or a root does not exist.
    public static func run(_ request: ImportRequest, store: Store, notice: @escaping (String) -> Void = { _ in },
                           progress: ((ImportProgress) -> Void)? = nil,
                           isCancelled: @escaping @Sendable () -> Bool = { false }) throws -> ImportReport {
        // A second writer waits for the store's writer lock (docs/store.md "One writer at a time"): say so.
        let previousWait = store.onWriterWait
        if previousWait == nil { store.onWriterWait = notice }
        defer { store.onWriterWait = previousWait }
        if request.histogramCache != nil || request.histogramServer != nil {
            try store.rememberHistogramCache(directory: request.histogramCache, server: request.histogramServer)
        }
        let source = HistogramDefinitionSource(try store.histogramCacheSetting())
        let failure = EnvironmentFailure()
        var options = ImportOptions(filter: request.filter, jobs: request.jobs, maxLineBytes: request.maxLineBytes,
                                    payloadConverter: ConverterFactory.payloadConverter(source: source, failure: failure))
        options.histogramColumns = request.histogramColumns
        options.force = request.force
        options.retryMissingDefinitions = !source.isEmpty
        let importer = Importer(store: store, options: options)
        let summary = try importer.run(roots: request.roots, planned: { plan in
            if plan.rawLogsToRead > 0 && source.isEmpty { notice(HistogramDefinitionSource.noDefinitionsWarning) }
        }, progress: progress, isCancelled: { isCancelled() || failure.message != nil })
        return ImportReport(summary: summary, storePath: store.path, environmentFailure: failure.message, definitions: source)
    }
}

/// What an import did, for both front doors: `text` (the command's summary), `shellText` (the REPL's shorter
/// form), `json`, and the exit status.
public struct ImportReport: Sendable, Equatable {
    public var summary: ImportSummary
    public var storePath: String
    /// The environment failure that stopped the run, or nil.
    public var environmentFailure: String?
    /// The histogram definitions raw logs were converted with.
    public var definitions: HistogramDefinitionSource

    public init(summary: ImportSummary, storePath: String, environmentFailure: String? = nil,
                definitions: HistogramDefinitionSource = HistogramDefinitionSource(directory: nil, server: nil)) {
        self.summary = summary
        self.storePath = storePath
        self.environmentFailure = environmentFailure
        self.definitions = definitions
    }

    /// Lines about files passed over, retried or to retry, shared by `text` and `shellText`; at most `limit`
    /// paths per list.
    func fileNotes(limit: Int, emptyRoots: Bool = true) -> String {
        let s = summary
        var out = ""
        func list(_ paths: [String]) -> String {
            var text = ""
            for path in paths.prefix(limit) { text += "  \(path)\n" }
            if paths.count > limit { text += "  … and \(paths.count - limit) more\n" }
            return text
        }
        if emptyRoots { for root in s.emptyRoots { out += "warning: \(root): no file to import there\n" } }
        if s.filesRetried > 0 {
            out += "Retried \(s.filesRetried) file(s) whose records lacked histogram definitions at an earlier import.\n"
        }
        if s.filesForced > 0 { out += "Re-imported \(s.filesForced) file(s) (--force).\n" }
        if !s.filesMissingDefinitions.isEmpty {
            let given = definitions.isEmpty ? "give --histogram-cache or --histogram-server" : "add the missing revisions to the histogram cache"
            out += "Records without histogram definitions (unknown_revision) in \(s.filesMissingDefinitions.count) file(s); "
                + "\(given) and import again: these files are read again.\n" + list(s.filesMissingDefinitions)
        }
        if !s.unchangedWithErrorsPaths.isEmpty {
            out += "Unchanged, still with errors from an earlier import:\n" + list(s.unchangedWithErrorsPaths)
        }
        if !s.openLogsSkipped.isEmpty {
            out += "Skipped \(s.openLogsSkipped.count) raw log(s) telemetry serve has not finished (imported once renamed .finished):\n"
                + list(s.openLogsSkipped)
        }
        if s.convertErrorFilesSkipped > 0 {
            out += "Skipped \(s.convertErrorFilesSkipped) rejected-record file(s) of telemetry convert (errors/*.errors.jsonl).\n"
        }
        return out
    }

    /// 0: everything asked for was imported; 1: some file or line failed, or the run was interrupted (the files
    /// done are committed); 2: an environment failure stopped the run.
    public var exitStatus: Int32 {
        if environmentFailure != nil { return 2 }
        return summary.hadFailures ? 1 : 0
    }

    /// The environment failure as a one-line error message, or nil.
    public var environmentFailureMessage: String? {
        environmentFailure.map { "\($0); stopped (the files imported so far are committed)" }
    }

    /// The error for roots under which there is no file (`OperationError.nothingSelected`), or nil.
    public var emptyRootsError: OperationError? {
        summary.emptyRoots.isEmpty ? nil : .nothingSelected(paths: summary.emptyRoots)
    }

    /// The command's summary (`telemetry import`).
    public var text: String {
        let s = summary
        let mb = Double(s.uncompressedBytes) / 1e6
        let rate = s.seconds > 0 ? mb / s.seconds : 0
        var out = "Imported \(s.pings) pings from \(s.filesImported) file(s) into \(storePath) in \(String(format: "%.2f", s.seconds)) s"
        out += " (\(String(format: "%.1f", mb)) MB of JSON, \(String(format: "%.1f", rate)) MB/s)"
        var notes: [String] = []
        if s.filesUnchanged > 0 { notes.append("\(s.filesUnchanged) unchanged file(s) skipped") }
        if s.filesUnchangedWithErrors > 0 {
            notes.append("\(s.filesUnchangedWithErrors) of them still with errors from an earlier import (see import_errors)")
        }
        if s.filesReplaced > 0 { notes.append("\(s.filesReplaced) changed file(s) replaced") }
        if s.filesExcluded > 0 { notes.append("\(s.filesExcluded) file(s) excluded by the filter") }
        if s.recordsExcluded > 0 { notes.append("\(s.recordsExcluded) raw-log record(s) excluded by the filter") }
        if !notes.isEmpty { out += "; " + notes.joined(separator: ", ") }
        out += ".\n"
        if s.badLineCount > 0 {
            let parts = s.badLines.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            out += "Bad lines: \(s.badLineCount) (\(parts.joined(separator: ", "))).\n"
        } else {
            out += "Bad lines: 0.\n"
        }
        if !s.warnings.isEmpty {
            out += "Warnings: " + s.warnings.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ".\n"
        }
        out += fileNotes(limit: 20)
        out += Self.fileErrorLines(s, limit: 20)
        out += Self.inputNotes(s, limit: 20)
        if s.badLineCount > 0 || !s.fileErrors.isEmpty {
            out += "Details: telemetry query \"SELECT path, line, reason, message FROM import_errors\"\n"
        }
        if s.interrupted { out += "Interrupted: the files done are committed; run the same command again to finish.\n" }
        return out
    }

    /// The REPL's summary (`.import`): no store path, and no time unless `showsTime` (scripts print the same
    /// text on every run). Roots with no file are left to `emptyRootsError`.
    public func shellText(showsTime: Bool) -> String {
        let s = summary
        var text = "Imported \(s.pings) ping\(s.pings == 1 ? "" : "s") from \(s.filesImported) file\(s.filesImported == 1 ? "" : "s")"
        if showsTime { text += String(format: " in %.2f s", s.seconds) }
        text += ".\n"
        var skipped: [String] = []
        if s.filesUnchanged > 0 { skipped.append("\(s.filesUnchanged) unchanged") }
        if s.filesExcluded > 0 { skipped.append("\(s.filesExcluded) excluded by the filter") }
        if !skipped.isEmpty { text += "Skipped files: " + skipped.joined(separator: ", ") + ".\n" }
        if s.badLineCount > 0 {
            let reasons = s.badLines.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            text += "Bad lines: \(s.badLineCount) (\(reasons)).\n"
        }
        text += fileNotes(limit: 5, emptyRoots: false)   // `.import` reports them as its error
        text += Self.fileErrorLines(s, limit: 5)
        text += Self.inputNotes(s, limit: 5)
        if s.badLineCount > 0 || !s.fileErrors.isEmpty {
            text += "Details: SELECT path, line, reason, message FROM import_errors;\n"
        }
        if s.interrupted { text += "Interrupted: the files done are committed; run the same .import again to finish.\n" }
        return text
    }

    /// Entries not opened (not regular files), empty files and empty directories, one line each.
    private static func inputNotes(_ s: ImportSummary, limit: Int) -> String {
        var out = ""
        for skipped in s.skippedInputs.prefix(limit) { out += "Skipped: \(skipped)\n" }
        if s.skippedInputs.count > limit { out += "  … and \(s.skippedInputs.count - limit) more entries skipped\n" }
        for path in s.emptyFiles.prefix(limit) { out += "Note: \(path): empty file (nothing to import)\n" }
        if s.emptyFiles.count > limit { out += "  … and \(s.emptyFiles.count - limit) more empty files\n" }
        return out
    }

    private static func fileErrorLines(_ s: ImportSummary, limit: Int) -> String {
        guard !s.fileErrors.isEmpty else { return "" }
        var out = "File errors: \(s.fileErrors.count)\n"
        for error in s.fileErrors.prefix(limit) { out += "  [\(error.reason)] \(error.message)\n" }
        if s.fileErrors.count > limit { out += "  … and \(s.fileErrors.count - limit) more\n" }
        return out
    }

    /// The summary as a JSON object (`telemetry import --json`).
    public var json: String {
        let s = summary
        var object: [String: Any] = [
            "store": storePath, "files_found": s.filesFound, "files_imported": s.filesImported, "files_replaced": s.filesReplaced,
            "files_unchanged": s.filesUnchanged, "files_unchanged_with_errors": s.filesUnchangedWithErrors,
            "files_excluded": s.filesExcluded, "records_excluded": s.recordsExcluded, "pings": s.pings,
            "bad_lines": s.badLines, "bad_line_count": s.badLineCount, "warnings": s.warnings,
            "compressed_bytes": s.compressedBytes, "uncompressed_bytes": s.uncompressedBytes,
            "seconds": s.seconds, "interrupted": s.interrupted,
            "files_retried": s.filesRetried, "files_forced": s.filesForced, "files_missing_definitions": s.filesMissingDefinitions,
            "unchanged_with_errors": s.unchangedWithErrorsPaths, "open_logs_skipped": s.openLogsSkipped,
            "convert_error_files_skipped": s.convertErrorFilesSkipped, "empty_roots": s.emptyRoots,
        ]
        object["file_errors"] = s.fileErrors.map { ["path": $0.path, "reason": $0.reason, "message": $0.message] }
        object["skipped_inputs"] = s.skippedInputs.map { ["path": $0.path, "reason": $0.reason] }
        object["empty_files"] = s.emptyFiles
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
