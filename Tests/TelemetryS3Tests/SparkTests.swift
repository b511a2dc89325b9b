import Foundation
import TelemetryTestSupport
import Testing

/// The Spark path with the real engine (docs/scale-out.md): `integrations/spark/test_telemetry_spark.py` runs every
/// Spark check in one local-mode SparkSession (PySpark from `.venv`, Java 17), reading generated storage files from
/// disk and from moto's S3 server on 127.0.0.1, and compares each answer with the telemetry binary's on one machine.
/// Fails (never skips) when PySpark or Java is missing.
@Suite(.serialized, .timeLimit(.minutes(8)))
struct SparkTests {
    static let script = Fixtures.repoPath("integrations/spark/test_telemetry_spark.py")

    /// Runs the minutes-long child on a thread of its own: a synchronous wait would hold one of the test pool's
    /// threads (two on a 2-core machine) and starve the NIO and log-writer tests into their time limits.
    static func runOffThePool(_ executable: String, _ arguments: [String], environment: [String: String]) async throws -> ProcessResult {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try runProcess(executable, arguments, environment: environment) }) }.start()
        }
    }

    @Test func sparkJobsEqualSingleMachineRetriesDoNotDoubleCountAndMergeRefusesHostileInput() async throws {
        let python = MotoServer.python
        let probe = try runProcess(python, ["-c", "import pyspark, shutil, sys; sys.exit(0 if shutil.which('java') else 3)"])
        try #require(probe.status == 0, """
            the Spark tests need PySpark in .venv and Java 17 on PATH: run `bash scripts/test.sh` (it installs \
            openjdk-17-jre-headless and pyspark), status \(probe.status): \(probe.stderr)
            """)
        let work = TemporaryDirectory("spark")
        let tree = try GeneratedData.make(in: work, pings: 400, filesPerPartition: 2, seed: 3)
        let bucket = "telemetry-published", prefix = "telemetry/v2/"
        let server = try MotoServer.start(plan: ["buckets": [["name": bucket]], "trees": [["bucket": bucket, "prefix": prefix, "dir": tree]]])
        defer { server.stop() }
        var environment = try server.cliEnvironment(home: work.path)
        environment["PYTHONUNBUFFERED"] = "1"
        environment["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        try FileManager.default.createDirectory(atPath: work.file("checks"), withIntermediateDirectories: true)
        let started = Date()
        let result = try await Self.runOffThePool(python, [Self.script, "--telemetry", Fixtures.telemetryExecutable, "--storage", tree,
                                             "--work", work.file("checks"), "--s3-url", "s3://\(bucket)/\(prefix)",
                                             "--endpoint-url", server.endpoint], environment: environment)
        let report = result.stdout.split(separator: "\n").filter { !$0.hasPrefix("WARN") }.joined(separator: "\n")
        #expect(result.status == 0, "Spark checks failed (\(Int(Date().timeIntervalSince(started))) s):\n\(report)\n\(result.stderr.suffix(3000))")
        for check in ["every_job_equals_single_machine", "filter_where_and_formats", "job_script_equals_single_machine",
                      "failed_task_is_retried_without_double_counting", "merge_refuses_hostile_partials"] {
            #expect(result.stdout.contains("ok \(check) "), "\(check) did not pass:\n\(report)")
        }
        #expect(result.stdout.contains("0 failure(s)"))
    }
}
