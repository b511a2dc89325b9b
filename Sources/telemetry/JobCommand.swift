import ArgumentParser
import Foundation
import TelemetryCore
import TelemetryJobs
import TelemetryOperations
import TelemetryStore

/// `telemetry job NAME|FILE.swift [job args] …`: runs a MapReduce job over the store (docs/jobs.md).
struct JobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job",
        abstract: "Run a MapReduce job (built-in by name, or a Swift job script) over the store.",
        discussion: """
        Built-in jobs: see --list. A path ending in .swift is compiled into a plugin and run (docs/jobs.md).
        Output: key TAB value LF per record (--format csv|json for the others). Pings on which map throws are \
        reported by document id and skipped unless --fail-fast; a summary goes to standard error.

        Exit status: 0 the job ran on every selected ping; 1 a ping on which map threw, an unknown job, no store, \
        or the output cannot be written; 64 bad arguments; 130 Ctrl-C.

        Examples:
          telemetry job pings-per-day
          telemetry job os-distribution --filter filter.json --format csv
          telemetry job histogram-by-channel --histogram GC_MS --where "os = 'WINNT'"
          telemetry job queries/ExampleJob.swift
          telemetry job os-distribution --partial shard3.partial --shard 3/8   (then: telemetry merge --job os-distribution *.partial)

        --partial FILE runs map and combine only and writes, per key, the combined state (docs/jobs.md "Partial \
        results"; - for standard output) instead of the output; bad pings are recorded in it and reported by \
        `telemetry merge`, which exits 1 for them as a whole run would.
        """
    )

    @Flag(name: .long, help: "List the built-in jobs.")
    var list = false

    @Option(name: .long, help: ArgumentHelp("A job filter (schema JSON, spec/storage.md §4).", valueName: "file"))
    var filter: String?

    @Option(name: .customLong("where"), help: ArgumentHelp("SQL condition on the pings columns.", valueName: "sql"))
    var whereSQL: String?

    @Option(name: .long, help: ArgumentHelp("Write the output here instead of standard output.", valueName: "file"))
    var output: String?

    @Option(name: .long, help: "Output format: tsv, csv or json.")
    var format: String = "tsv"

    @Flag(name: .long, help: "Stop at the first ping whose map throws.")
    var failFast = false

    @Option(name: .long, help: "Number of mapper partitions (default: the number of cores).")
    var mappers: Int?

    @Option(name: .customLong("repeat"), help: ArgumentHelp("Run N times in this process; write the last run's output and a timing line on standard error (benchmarks).", valueName: "n"))
    var repeatCount = 1

    @Option(name: .long, help: ArgumentHelp("Write a partial result (map and combine, no reduce) for 'telemetry merge' to FILE (- for standard output).", valueName: "file"))
    var partial: String?

    @Option(name: .long, help: ArgumentHelp("With --partial: the shard this store holds, I/N (0-based; default 0/1). A merge needs every shard once.", valueName: "i/n"))
    var shard: String?

    @Option(name: .long, help: ArgumentHelp("With --partial: the attempt number recorded in the partial (e.g. Spark's task attempt).", valueName: "n"))
    var attempt: Int = 0

    @OptionGroup var storeOptions: StoreOptions

    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("Job name or FILE.swift, then the job's own arguments.", valueName: "job"))
    var job: [String] = []

    func validate() throws {
        if repeatCount < 1 { throw ValidationError("--repeat must be at least 1") }
        if let mappers, mappers < 1 { throw ValidationError("--mappers must be at least 1") }
        if JobOutputFormat(rawValue: format) == nil { throw ValidationError("--format must be tsv, csv or json") }
        if partial == nil, shard != nil || attempt != 0 { throw ValidationError("--shard and --attempt apply to --partial") }
        if partial != nil, output != nil { throw ValidationError("--partial writes the partial result; --output does not apply") }
        if let shard { do { _ = try PartialShard(parsing: shard, attempt: attempt) } catch { throw ValidationError("\(error)") } }
        if attempt < 0 { throw ValidationError("--attempt must be at least 0") }
        for target in [output, partial].compactMap({ $0 }) where target != "-" {
            try Self.validateOutputPath(target, option: target == output ? "--output" : "--partial")
        }
    }

    func run() throws {
        if list {
            for entry in JobRegistry.entries {
                print("\(entry.name)\(entry.usage.isEmpty ? "" : " " + entry.usage)\t\(entry.summary)")
            }
            return
        }
        guard let name = job.first else { throw ValidationError("name a job (telemetry job --list) or a .swift file") }
        guard let outputFormat = JobOutputFormat(rawValue: format) else {
            throw ValidationError("--format must be tsv, csv or json")
        }
        var selection = JobSelection(whereSQL: whereSQL)
        if let filter { selection.filter = try DimensionSchema(contentsOf: filter) }
        let options = JobOptions(selection: selection, mappers: mappers ?? ProcessInfo.processInfo.activeProcessorCount,
                                 failFast: failFast)
        let storePath = storeOptions.resolvedPath
        guard FileManager.default.fileExists(atPath: storePath) else {
            throw StoreError.missingStore(path: storePath)
        }
        let arguments = Array(job.dropFirst())
        if let partial {
            try writePartial(try JobOperation.job(named: name, arguments: arguments, storePath: storePath), to: partial,
                             storePath: storePath, options: options)
            return
        }
        let runner = try JobOperation.runner(job: name, arguments: arguments, storePath: storePath, options: options)
        signal(SIGINT, SIG_IGN)
        var result: JobResult?
        try RepeatTiming.measure(runs: repeatCount) { _ in
            let execution = BlockingJobRun(runner)
            let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
            source.setEventHandler { execution.cancel() }
            source.resume()
            defer { source.cancel() }
            do { result = try execution.wait() } catch is CancellationError {
                printError("job interrupted")
                throw ExitCode(130)
            }
        }
        guard let result else { return }
        for bad in result.badPings { printError("bad ping \(bad.documentID): \(bad.message)") }
        try Self.write(outputFormat.render(result), to: output)
        printError(result.summary)
        if !result.badPings.isEmpty { throw ExitCode(1) }
    }

    /// `--partial`: map and combine, then the partial result to `target` (a temporary file renamed into place,
    /// so a killed run leaves no partial that looks complete). Exit 0 even with bad pings: they are in the partial.
    private func writePartial(_ selected: AnyJob, to target: String, storePath: String, options: JobOptions) throws {
        let shardSpec = try shard.map { try PartialShard(parsing: $0, attempt: attempt) } ?? PartialShard(attempt: attempt)
        signal(SIGINT, SIG_IGN)
        let execution = BlockingJobRun { try await selected.partial(storePath: storePath, options: options, shard: shardSpec) }
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { execution.cancel() }
        source.resume()
        defer { source.cancel() }
        let (data, result): (Data, JobResult)
        do { (data, result) = try execution.wait() } catch is CancellationError {
            printError("job interrupted")
            throw ExitCode(130)
        }
        for bad in result.badPings { printError("bad ping \(bad.documentID): \(bad.message)") }
        if target == "-" {
            try Self.write(String(decoding: data, as: UTF8.self), to: nil)
        } else {
            let temporary = target + ".partial-\(getpid())"
            do {
                try data.write(to: URL(fileURLWithPath: temporary))
                if FileManager.default.fileExists(atPath: target) { try FileManager.default.removeItem(atPath: target) }
                try FileManager.default.moveItem(atPath: temporary, toPath: target)
            } catch {
                try? FileManager.default.removeItem(atPath: temporary)
                printError("\(target): cannot write the partial result (\(error.localizedDescription))")
                throw ExitCode.failure
            }
        }
        printError("\(result.pingsMapped) pings mapped in \(result.partitions) partitions, \(result.badPings.count) bad; "
                   + "partial result of shard \(shardSpec.index)/\(shardSpec.count) written to \(target == "-" ? "standard output" : target)")
    }

    /// Checks that `path` can be written: not a directory, in an existing directory.
    static func validateOutputPath(_ path: String, option: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ValidationError("\(option) \(path) is a directory")
        }
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !(FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory) && isDirectory.boolValue) {
            throw ValidationError("\(option) \(path): no such directory \(parent)")
        }
    }

    /// Writes `text` to `output`, or to standard output when nil, with checked writes (`Output`): a full disk or a
    /// closed pipe exits 2 naming the file, and a partial `output` file is removed.
    static func write(_ text: String, to output: String?) throws {
        do {
            if let output { try Output.file(text, path: output) } else { try Output.standardOutput(text) }
        } catch {
            throw Output.failed(error)
        }
    }
}
