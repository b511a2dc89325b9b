import Foundation
import TelemetryJobs

/// Job launch for `telemetry job` and `.job` (docs/jobs.md).
public enum JobOperation {
    /// The run of `job` (a built-in job's name, or a path ending in `.swift`: a job script, compiled and loaded)
    /// with its own `arguments`, over the store at `storePath`.
    /// - Throws: `JobError` for an unknown job name or a script that does not compile or load.
    public static func runner(job: String, arguments: [String], storePath: String,
                              options: JobOptions) throws -> @Sendable () async throws -> JobResult {
        if job.hasSuffix(".swift") {
            let plugin = try JobScript.load(path: job)
            return { try await plugin.run(arguments, storePath, options) }
        }
        let entry = try JobRegistry.entry(named: job)
        return { try await entry.run(arguments, storePath, options) }
    }

    /// Starts `job` on the Swift concurrency pool; `wait()` blocks until it ends, `cancel()` stops it (Ctrl-C).
    public static func launch(job: String, arguments: [String], storePath: String, options: JobOptions) throws -> BlockingJobRun<JobResult> {
        BlockingJobRun(try runner(job: job, arguments: arguments, storePath: storePath, options: options))
    }
}
