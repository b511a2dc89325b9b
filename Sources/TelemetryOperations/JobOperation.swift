import Foundation
import TelemetryJobs

/// Job launch for `telemetry job` and `.job` (docs/jobs.md).
public enum JobOperation {
    /// The run of `job` (a built-in job's name, or a path ending in `.swift`: a job script, compiled and loaded)
    /// with its own `arguments`, over the store at `storePath`.
    /// - Throws: `JobError` for an unknown job name or a script that does not compile or load.
    public static func runner(job: String, arguments: [String], storePath: String,
                              options: JobOptions) throws -> @Sendable () async throws -> JobResult {
        let made = try self.job(named: job, arguments: arguments, storePath: storePath)
        return { try await made.run(storePath: storePath, options: options) }
    }

    /// A built-in job by name, or a `.swift` job script (compiled and loaded), made with its `arguments` for the
    /// store at `storePath` — nil when only merging partials (docs/jobs.md "Partial results").
    /// - Throws: `JobError` for an unknown job, bad arguments, or a script that does not compile or load.
    public static func job(named name: String, arguments: [String], storePath: String?) throws -> AnyJob {
        if name.hasSuffix(".swift") { return try JobScript.loadJob(path: name, arguments: arguments) }
        return try JobRegistry.entry(named: name).make(arguments, storePath)
    }

    /// `telemetry merge`: the final combine and reduce of `job` over partial results. The job's arguments come from
    /// the first partial's header (all must agree: `JobRunner.merge` checks).
    /// - Throws: `PartialError` (no input, another job or version, truncated or damaged input, duplicated or missing
    ///   shards, partials of different runs), `JobError`.
    public static func merge(job name: String, partials: [PartialInput]) throws -> JobResult {
        guard let first = partials.first else { throw PartialError.noPartials }
        let arguments = try JobPartialFormat.identity(of: first).arguments
        return try job(named: name, arguments: arguments, storePath: nil).merge(partials)
    }

    /// Starts `job` on the Swift concurrency pool; `wait()` blocks until it ends, `cancel()` stops it (Ctrl-C).
    public static func launch(job: String, arguments: [String], storePath: String, options: JobOptions) throws -> BlockingJobRun<JobResult> {
        BlockingJobRun(try runner(job: job, arguments: arguments, storePath: storePath, options: options))
    }
}
