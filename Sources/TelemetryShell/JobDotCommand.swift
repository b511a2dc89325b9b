import Foundation
import TelemetryJobs
import TelemetryOperations

extension ShellSession {
    // MARK: .job

    /// `.job NAME [args]` or `.job FILE.swift`: runs a MapReduce job over the session's store (the session
    /// filter applies), writes its TSV output to the current output, bad pings and a summary to errors.
    /// Ctrl-C cancels the run (mappers stop between pings).
    mutating func runJob(_ arguments: [Substring]) throws {
        guard let name = arguments.first.map(String.init) else {
            throw ShellError.usage(command: "job", usage: DotCommand.usage(of: "job"))
        }
        guard store != nil else { throw ShellError.noStore(path: storePath) }
        let jobArguments = arguments.dropFirst().map(String.init)
        let options = JobOptions(selection: JobSelection(filter: filter?.schema))
        let job = name.hasSuffix(".swift") ? expandingTilde(name) : name
        let execution = try JobOperation.launch(job: job, arguments: jobArguments, storePath: storePath, options: options)
        let result: JobResult
        do {
            result = try interrupts.map { try $0.during(cancel: { execution.cancel() }) { try execution.wait() }.value }
                ?? execution.wait()
        } catch is CancellationError {
            throw ShellError.interrupted
        }
        for bad in result.badPings { errors.write("bad ping \(bad.documentID): \(bad.message)\n") }
        output.write(JobOutputFormat.tsv.render(result))
        errors.write(result.summary + "\n")
    }
}
