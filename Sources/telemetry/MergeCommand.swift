import ArgumentParser
import Foundation
import TelemetryJobs
import TelemetryOperations

/// `telemetry merge --job NAME FILE…`: the final combine and reduce over partial results (docs/jobs.md
/// "Partial results"), printing what `telemetry job NAME` over all the shards' pings prints.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge partial job results (telemetry job --partial) from any number of machines and reduce them.",
        discussion: """
        Reads the partials from the files given, or from standard input (partials concatenated) when none is \
        given. They must all come from one run of the job: the same job, version, arguments, filter, --where and \
        store schema, and together every shard 0/N … N-1/N exactly once. Anything else — another job or version, \
        a truncated or altered file, a duplicated or missing shard, empty input — is refused with the file named \
        and exit status 2; nothing is printed. Bad pings recorded in the partials are reported as the job \
        reports them, and make the exit status 1.

        Examples:
          telemetry merge --job os-distribution shard-*.partial
          cat shard-*.partial | telemetry merge --job os-distribution --format csv
        """
    )

    @Option(name: .long, help: ArgumentHelp("The job the partials belong to: a built-in name or FILE.swift (its arguments come from the partials).", valueName: "name"))
    var job: String

    @Option(name: .long, help: ArgumentHelp("Write the output here instead of standard output.", valueName: "file"))
    var output: String?

    @Option(name: .long, help: "Output format: tsv, csv or json.")
    var format: String = "tsv"

    @Argument(help: ArgumentHelp("Partial result files (default: standard input).", valueName: "file"))
    var files: [String] = []

    func validate() throws {
        if JobOutputFormat(rawValue: format) == nil { throw ValidationError("--format must be tsv, csv or json") }
        if let output { try JobCommand.validateOutputPath(output, option: "--output") }
    }

    func run() throws {
        guard let outputFormat = JobOutputFormat(rawValue: format) else { throw ValidationError("--format must be tsv, csv or json") }
        let result: JobResult
        do {
            result = try JobOperation.merge(job: job, partials: try readInputs())
        } catch let error as PartialError {
            printError("merge: \(error)")
            throw ExitCode(2)
        } catch let error as JobError {
            printError("merge: \(error)")
            throw ExitCode(2)
        }
        for bad in result.badPings { printError("bad ping \(bad.documentID): \(bad.message)") }
        try JobCommand.write(outputFormat.render(result), to: output)
        printError(result.summary)
        if !result.badPings.isEmpty { throw ExitCode(1) }
    }

    /// The files' contents, or standard input split into partials (each ends with its end line).
    private func readInputs() throws -> [PartialInput] {
        if !files.isEmpty {
            return try files.map { path in
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw ValidationError("\(path): cannot read (\(String(cString: strerror(errno))))")
                }
                return PartialInput(source: path, data: data)
            }
        }
        let data = FileHandle.standardInput.readDataToEndOfFile()
        return JobPartialFormat.split(data, source: "<stdin>")
    }
}
