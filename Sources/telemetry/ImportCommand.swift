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
    var paths: [String]

    @OptionGroup var storeOptions: StoreOptions

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

    @OptionGroup(title: "S3 (for s3:// paths)") var s3: S3ImportOptions

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        var isDirectory: ObjCBool = false
        if let histogramCache, !(FileManager.default.fileExists(atPath: histogramCache, isDirectory: &isDirectory) && isDirectory.boolValue) {
            throw ValidationError("--histogram-cache \(histogramCache): no such directory")
        }
        guard maxLineBytes >= 1024 else { throw ValidationError("--max-line-bytes must be at least 1024") }
        try s3.validate(paths: paths)
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
        // s3:// paths: credentials and listing first, so that an S3 failure leaves no store behind.
        let s3Selected = try s3.select(paths, schema: S3ImportOptions.selectionSchema(requested: requestedSchema, storePath: storeOptions.resolvedPath),
                                       filter: filterSchema)
        if s3.dryRun {
            s3.printDryRun(s3Selected)
            if s3Selected?.emptyLocations.isEmpty == false { throw ExitCode(1) }
            return
        }
        let store: Store
        do {
            store = try Store(path: storeOptions.resolvedPath, create: true, schema: requestedSchema)
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
        request.roots = paths.filter { !S3Location.isS3URL($0) } + fetched.localPaths
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
