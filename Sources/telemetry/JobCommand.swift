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

    @OptionGroup var storeOptions: StoreOptions

    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("Job name or FILE.swift, then the job's own arguments.", valueName: "job"))
    var job: [String] = []

    func validate() throws {
        if repeatCount < 1 { throw ValidationError("--repeat must be at least 1") }
        if let mappers, mappers < 1 { throw ValidationError("--mappers must be at least 1") }
        if JobOutputFormat(rawValue: format) == nil { throw ValidationError("--format must be tsv, csv or json") }
        if let output {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory), isDirectory.boolValue {
                throw ValidationError("--output \(output) is a directory")
            }
            let parent = URL(fileURLWithPath: output).deletingLastPathComponent().path
            if !(FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory) && isDirectory.boolValue) {
                throw ValidationError("--output \(output): no such directory \(parent)")
            }
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
        let text = outputFormat.render(result)
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: Data(text.utf8)) else {
                printError("\(output): cannot write the job's output (\(String(cString: strerror(errno))))")
                throw ExitCode.failure
            }
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
        printError(result.summary)
        if !result.badPings.isEmpty { throw ExitCode(1) }
    }
}
