import Foundation
import Testing
import TelemetryTestSupport

/// The export read back by engines we did not write: `export_readers.py` (beside this file) builds a store from the
/// sample and hostile pings, exports it with the `telemetry` binary (Parquet by date, Parquet by channel and OS,
/// JSON lines, an empty selection, a re-run), and checks pyarrow, DuckDB and Spark (`local[2]`, Java 17) against
/// the store's exact J1/J2 answers, the footer statistics against the data, both encodings, partition round trips
/// and that the store is left unchanged. The venv (`scripts/test.sh`) has pyarrow, duckdb and pyspark.
@Suite struct ExportReaderTests {
    static var python: String {
        if let override = ProcessInfo.processInfo.environment["TELEMETRY_EXPORT_PYTHON"], !override.isEmpty { return override }
        return Fixtures.repoPath(".venv/bin/python")
    }
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("export_readers.py").path

    /// `runProcess` on a thread of its own: the script runs for most of a minute (Spark), and blocking one of the
    /// few threads of Swift's cooperative pool that long would stall the suite's concurrent tests.
    static func runOffThePool(_ executable: String, _ arguments: [String], environment: [String: String]) async throws -> ProcessResult {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try runProcess(executable, arguments, environment: environment) }) }.start()
        }
    }

    @Test(.timeLimit(.minutes(10)))
    func pyarrowDuckDBAndSparkReadTheExportWithTheStoresAnswers() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.python),
                     "no \(Self.python): run `bash scripts/test.sh` (it installs pyarrow, duckdb and pyspark into .venv)")
        let directory = TemporaryDirectory("export-readers")
        let result = try await Self.runOffThePool(Self.python, [Self.script, Fixtures.telemetryExecutable, Fixtures.repoPath("datasets/sample/storage"),
                                                  directory.file("work")],
                                    environment: ["PYSPARK_PYTHON": Self.python, "SPARK_LOCAL_IP": "127.0.0.1"])
        let checks = result.stdout.split(separator: "\n").filter { $0.hasPrefix("ok ") || $0.hasPrefix("FAIL ") }
        for failure in checks where failure.hasPrefix("FAIL ") { Issue.record("\(failure)") }
        #expect(result.status == 0, "export_readers.py exited \(result.status)\n\(result.stdout)\n\(result.stderr.suffix(4000))")
        #expect(checks.count >= 42, "only \(checks.count) checks ran:\n\(result.stdout)\n\(result.stderr.suffix(4000))")
    }
}
