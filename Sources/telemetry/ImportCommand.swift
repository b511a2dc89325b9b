import ArgumentParser
import Foundation
import TelemetryConvert
import TelemetryCore
import TelemetryOperations
import TelemetryS3
import TelemetryShell
import TelemetryStore

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import storage-format files into the store (incremental, resumable).",
        discussion: """
        Walks each PATH (a directory in the storage layout, or one file) and imports every file not imported \
        before, or changed since (by size, mtime and CRC-64 content hash). Files may be xz, lzma (LZMA-alone), \
        gzip or plain text, detected by their magic bytes. Each file is imported in one transaction: an \
        interrupted import leaves a consistent store, and running the same command again completes it.

        Bad lines (no tab, invalid JSON, invalid UTF-8, too long) and damaged files are counted, recorded in the \
        store's import_errors table with file, line and reason, and the import goes on; the good records of a \
        damaged file are kept.

        Raw logs (files starting with a raw-log record) are converted on the way with the histogram cache/server \
        the store remembers (--histogram-cache/--histogram-server replace it). A file whose records were rejected \
        for want of definitions (unknown_revision) is read again by the next import that has definitions; \
        --force reads every file again whatever its state. A raw log of `telemetry serve` that is not yet \
        .finished is skipped (imported once finished), and so are `telemetry convert`'s errors/*.errors.jsonl \
        files under a root.

        Exit status: 0 every file found was imported or unchanged; 1 a bad line, a damaged file, a path outside \
        the layout, records without definitions, a PATH or s3:// prefix with no file, a failed download, or \
        Ctrl-C (the files done are committed); 2 the store cannot be opened or written, S3 credentials or listing \
        failed, or a histogram cache file is unreadable; 64 bad arguments.

        A path s3://BUCKET[/PREFIX] imports from S3 or an S3-compatible store: PREFIX is a storage-layout root; \
        the filter is applied to the keys before anything is downloaded; the selected files are downloaded into \
        the cache (resumable, verified against size and ETag, reused on the next run) and imported from there. \
        Credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN], --profile or \
        AWS_PROFILE in ~/.aws/credentials and ~/.aws/config; without any the command stops, unless \
        --no-sign-request asks for anonymous access. See docs/s3.md.
        """
    )

    @Argument(help: ArgumentHelp("Directories (storage layout roots), files, or s3://BUCKET[/PREFIX] to import.", valueName: "path"))
    var paths: [String] = []

    @OptionGroup var storeOptions: StoreOptions

    @OptionGroup var writer: WriterOptions

    @Option(help: ArgumentHelp("Dimension schema JSON for a new store (default: the seed's 6 dimensions).", valueName: "file"))
    var schema: String?

    @Option(help: ArgumentHelp("Job filter JSON: files whose path dimensions it excludes are skipped unopened.", valueName: "file"))
    var filter: String?

    @Option(help: ArgumentHelp("Directory of Histograms.json files, <repo>/<revision>/Histograms.json: converts raw logs, and gives the SQL histogram functions their bucket bounds. Remembered by the store: later imports and queries use it until another is given.", valueName: "dir"))
    var histogramCache: String?

    @Option(help: ArgumentHelp("Histogram server to fetch revisions missing from the cache from; remembered by the store like --histogram-cache.", valueName: "url"))
    var histogramServer: String?

    @Option(help: ArgumentHelp("Parser threads (default: the number of cores).", valueName: "n"))
    var jobs: Int?

    @Option(help: ArgumentHelp("Longest accepted line in bytes; longer lines are bad lines (too_long).", valueName: "bytes"))
    var maxLineBytes: Int = 16 << 20

    @Flag(inversion: .prefixedNo, help: ArgumentHelp("Write the histogram column files during the import (the SQL histogram functions and jobs read them; --no-histogram-columns leaves them out of date until 'telemetry reindex')."))
    var histogramColumns = true

    @Flag(help: "Read every file under the paths again, whatever its state (unchanged, imported with errors), replacing its earlier import.")
    var force = false

    @Flag(help: "Print the summary as JSON.")
    var json = false

    @Option(name: .customLong("paths-from"),
            help: ArgumentHelp("Also import the paths listed in FILE, one per line (as --dry-run prints them: SIZE TAB PATH, or PATH).", valueName: "file"))
    var pathsFrom: String?

    @OptionGroup(title: "S3 (for s3:// paths)") var s3: S3ImportOptions

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        var isDirectory: ObjCBool = false
        if let histogramCache, !(FileManager.default.fileExists(atPath: histogramCache, isDirectory: &isDirectory) && isDirectory.boolValue) {
            throw ValidationError("--histogram-cache \(histogramCache): no such directory")
        }
        guard maxLineBytes >= 1024 else { throw ValidationError("--max-line-bytes must be at least 1024") }
        try s3.validate(paths: paths)
        if paths.isEmpty && pathsFrom == nil { throw ValidationError("name a path to import (or --paths-from FILE)") }
        for path in paths where !S3Location.isS3URL(path) && !FileManager.default.fileExists(atPath: path) {
            throw ValidationError("\(path): no such file or directory")
        }
    }

    func run() throws {
        let requestedSchema: DimensionSchema?
        let filterSchema: DimensionSchema?
        do {
            requestedSchema = try schema.map { try DimensionSchema(contentsOf: $0) }
            filterSchema = try filter.map { try DimensionSchema(contentsOf: $0) }
        } catch {
            throw ValidationError("\(error)")
        }
        var localPaths = paths.filter { !S3Location.isS3URL($0) }
        if let pathsFrom { localPaths += try Self.listedPaths(pathsFrom) }
        // s3:// paths: credentials and listing first, so that an S3 failure leaves no store behind.
        let selectionSchema = S3ImportOptions.selectionSchema(requested: requestedSchema, storePath: storeOptions.resolvedPath)
        let s3Selected = try s3.select(paths, schema: selectionSchema, filter: filterSchema)
        if s3.dryRun {
            try Self.printDryRun(localPaths: localPaths, schema: selectionSchema, filter: filterSchema)
            s3.printDryRun(s3Selected)
            if s3Selected?.emptyLocations.isEmpty == false { throw ExitCode(1) }
            return
        }
        let store: Store
        do {
            store = try Store(path: storeOptions.resolvedPath, create: true, schema: requestedSchema,
                              writerWaitSeconds: writer.waitSeconds, onWriterWait: { printError($0) })
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
        if let filterSchema, filterSchema.dimensions.count != store.schema.dimensions.count {
            throw ValidationError("the filter has \(filterSchema.dimensions.count) dimensions, the store's schema \(store.schema.dimensions.count)")
        }
        let interrupt = InterruptFlag()
        interrupt.install()
        let progress = TerminalProgress()
        var request = ImportRequest(roots: [], filter: filterSchema)
        request.jobs = jobs ?? ProcessInfo.processInfo.activeProcessorCount
        request.maxLineBytes = maxLineBytes
        request.histogramColumns = histogramColumns
        request.histogramCache = histogramCache
        request.histogramServer = histogramServer
        request.force = force
        let fetched = try s3.fetch(s3Selected, progress: progress, json: json, isCancelled: { interrupt.isRaised })
        request.roots = localPaths + fetched.localPaths
        let report: ImportReport
        do {
            report = try ImportOperation.run(request, store: store, notice: { printError($0) }, progress: { progress.update($0) },
                                             isCancelled: { interrupt.isRaised })
        } catch {
            progress.finish()
            printError("\(error)")
            throw ExitCode(2)
        }
        progress.finish()
        if let message = report.environmentFailureMessage {
            printError(message)
            throw ExitCode(2)
        }
        print(json ? report.json : report.text, terminator: "")
        if report.exitStatus != 0 { throw ExitCode(report.exitStatus) }
        if fetched.hadFailures { throw ExitCode(1) }
    }
}

extension ImportCommand {
    /// The paths of a `--paths-from` / `--keys-from` list: one per line, `SIZE TAB PATH` (as `--dry-run` prints) or
    /// `PATH`; empty lines skipped.
    /// - Throws: `ValidationError` when the file cannot be read.
    static func listedPaths(_ file: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("\(file): cannot read the list (\(String(cString: strerror(errno))))")
        }
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).map { line in
            if let tab = line.firstIndex(of: "\t"), !line[..<tab].isEmpty, line[..<tab].allSatisfy(\.isASCII), line[..<tab].allSatisfy(\.isNumber) {
                return String(line[line.index(after: tab)...])
            }
            return String(line)
        }
    }

    /// `--dry-run` for local paths: one `<size>\t<path>` line per file the import would read (import order), then
    /// a count and size line.
    static func printDryRun(localPaths: [String], schema: DimensionSchema, filter: DimensionSchema?) throws {
        guard !localPaths.isEmpty else { return }
        if let filter, filter.dimensions.count != schema.dimensions.count {
            throw ValidationError("the filter has \(filter.dimensions.count) dimensions, the store's schema \(schema.dimensions.count)")
        }
        let (files, outside, excluded) = try Importer.selectFiles(roots: localPaths, schema: schema, filter: filter)
        var out = ""
        for file in files { out += "\(file.size)\t\(file.path)\n" }
        let total = files.reduce(Int64(0)) { $0 + Int64($1.size) }
        var notes: [String] = []
        if excluded > 0 { notes.append("\(excluded) file(s) excluded by the filter") }
        if !outside.isEmpty {
            let shown = outside.prefix(3).joined(separator: ", ")
            notes.append("\(outside.count) file(s) outside the storage layout skipped (\(shown)\(outside.count > 3 ? ", …" : ""))")
        }
        out += "local: \(files.count) file(s) selected, \(total) bytes (\(S3ImportOptions.megabytes(total)))"
            + (notes.isEmpty ? "" : "; " + notes.joined(separator: "; ")) + ".\n"
        print(out, terminator: "")
    }
}
