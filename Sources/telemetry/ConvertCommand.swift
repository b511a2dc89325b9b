import ArgumentParser
import Foundation
import TelemetryConvert
import TelemetryCore
import TelemetryOperations
import TelemetryShell

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert raw submission logs into the storage layout, validating every ping.",
        discussion: """
        Reads raw logs (v1/v2 records, the version decided by the content) or text files of \
        `<document id>\\t<json>` lines, validates each payload (versions 1–5) against the Histograms.json of its \
        revision, compacts histograms, and writes xz files in the storage layout under --out. A file gets its \
        final name (`<...>.v2.log.<32 hex>.xz`) only when complete.

        Every rejected record is counted by category (corrupted_data, empty_data, invalid_path, uuid_only_path, \
        conversion_error, missing_revision, missing_revision_repo, unknown_revision, bad_payload, write_failed) \
        and written with its raw bytes to <out>/errors/<input name>.errors.jsonl. Histogram definitions come from \
        --histogram-cache (laid out <repo>/<revision>/Histograms.json) and, when given, --histogram-server. \
        Exit status: 0 every record converted; 1 a record rejected, an unreadable input or Ctrl-C; 2 the output \
        cannot be written or a histogram cache file is unreadable; 64 bad arguments. `telemetry import DIR` \
        skips DIR/errors/ (docs/convert.md).
        """
    )

    @Argument(help: ArgumentHelp("Raw log files or directories of them.", valueName: "input"))
    var inputs: [String]

    @Option(help: ArgumentHelp("Output directory (the storage layout's root).", valueName: "dir"))
    var out: String

    @Option(help: ArgumentHelp("Dimension schema JSON (default: the seed's 6 dimensions).", valueName: "file"))
    var schema: String?

    @Option(help: ArgumentHelp("Directory of Histograms.json files: <repo>/<revision>/Histograms.json.", valueName: "dir"))
    var histogramCache: String?

    @Option(help: ArgumentHelp("Histogram server to fetch missing revisions from (saved into the cache).", valueName: "url"))
    var histogramServer: String?

    @Option(help: ArgumentHelp("Parallel input files (default: the number of cores).", valueName: "n"))
    var jobs: Int?

    @Option(help: ArgumentHelp("Rotate output files at this many uncompressed bytes.", valueName: "bytes"))
    var maxFileSize: Int = 500_000_000

    @Option(help: ArgumentHelp("xz preset of the output files, 0–9.", valueName: "n"))
    var xzPreset: UInt32 = 0

    @Option(help: ArgumentHelp("Largest accepted record after inflating, in bytes.", valueName: "bytes"))
    var maxUncompressed: Int = 1_048_576

    @Flag(help: "Print the summary as JSON.")
    var json = false

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        guard xzPreset <= 9 else { throw ValidationError("--xz-preset must be 0–9") }
        guard maxFileSize >= 1 else { throw ValidationError("--max-file-size must be positive") }
        guard maxUncompressed >= 1 else { throw ValidationError("--max-uncompressed must be positive") }
        if let histogramServer, URL(string: histogramServer)?.scheme?.hasPrefix("http") != true {
            throw ValidationError("--histogram-server must be an http(s) URL")
        }
    }

    func run() throws {
        for input in inputs where !FileManager.default.fileExists(atPath: input) {
            throw ValidationError("\(input): no such file or directory")
        }
        var options = ConvertOptions()
        do {
            options.schema = try schema.map { try DimensionSchema(contentsOf: $0) } ?? .seed
        } catch {
            throw ValidationError("\(error)")
        }
        options.jobs = jobs ?? ProcessInfo.processInfo.activeProcessorCount
        options.maxFileBytes = maxFileSize
        options.preset = xzPreset
        options.maxUncompressedBytes = maxUncompressed
        let interrupt = InterruptFlag()
        interrupt.install()
        let bar = TerminalProgress()
        let summary: ConvertSummary
        let environmentFailure: String?
        do {
            (summary, environmentFailure) = try ConvertOperation.run(
                inputs: inputs, outputDirectory: out, options: options,
                source: HistogramDefinitionSource(directory: histogramCache, server: histogramServer),
                notice: { printError($0) },
                progress: { p in
                    bar.update(label: "records \(p.records)  rejected \(p.rejected)", done: p.bytesDone, total: p.bytesTotal,
                               filesDone: p.filesDone, filesTotal: p.filesTotal, bytesPerSecond: p.elapsedSeconds > 0 ? Double(p.bytesDone) / p.elapsedSeconds : 0,
                               elapsed: p.elapsedSeconds)
                }, isCancelled: { interrupt.isRaised })
        } catch {
            bar.finish()
            printError("\(error)")
            throw ExitCode(2)
        }
        bar.finish()
        if let environmentFailure {
            printError("\(environmentFailure); stopped (the files written so far are complete)")
            throw ExitCode(2)
        }
        print(json ? ConvertReport.json(summary) : ConvertReport.text(summary), terminator: "")
        if summary.rejected > 0 || !summary.inputErrors.isEmpty || interrupt.isRaised { throw ExitCode(1) }
    }
}

