import Foundation
import Testing
@testable import TelemetryJobs
import TelemetryStore
import TelemetryTestSupport

/// `telemetry job FILE.swift` end to end: the CLI (linked with --export-dynamic) compiles and loads the script.
@Suite(.serialized)
struct JobScriptTests {
    @Test func exampleJobScriptCompilesRunsAndIsCached() throws {
        let store = try ImportedStore.sample()
        let cache = TemporaryDirectory("jobs-cache")
        let environment = ["XDG_CACHE_HOME": cache.path]
        let script = Fixtures.repoPath("queries/ExampleJob.swift")
        let first = try runProcess(Fixtures.telemetryExecutable, ["job", script, "--store", store.path], environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        let expected = try store.twinSQL("""
            SELECT coalesce(os, 'UNKNOWN') || '/' || appUpdateChannel, count(*) FROM pings GROUP BY 1 ORDER BY 1
            """)
        #expect(first.stdout == expected.map { "\($0.key)\t\($0.value)\n" }.joined())
        let cached = try FileManager.default.contentsOfDirectory(atPath: cache.path + "/telemetry/jobs").filter { $0.hasSuffix(".so") }
        #expect(cached.count == 1)
        let second = try runProcess(Fixtures.telemetryExecutable, ["job", script, "--store", store.path, "--format", "csv"],
                                    environment: environment)
        #expect(second.status == 0)
        #expect(second.stdout == expected.map { "\($0.key),\($0.value)\n" }.joined())
    }

    @Test func compileErrorIsShownWithFileAndLine() throws {
        let store = try ImportedStore.real()
        let directory = TemporaryDirectory("jobs-script")
        let script = try directory.write("Broken.swift", text: """
            import TelemetryJobs

            let telemetryJob = NoSuchJobType()
            """)
        let result = try runProcess(Fixtures.telemetryExecutable, ["job", script, "--store", store.path],
                                    environment: ["XDG_CACHE_HOME": directory.path + "/cache"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("Broken.swift:3:"), "\(result.stderr)")
        #expect(result.stderr.contains("compiling the job script failed"))
    }

    @Test func missingToolchainIsAClearMessage() throws {
        #expect(throws: JobError.self) {
            try JobScript.compile(path: Fixtures.repoPath("queries/ExampleJob.swift"), environment: ["SWIFTC": "/no/such/swiftc"])
        }
        do {
            _ = try JobScript.compile(path: Fixtures.repoPath("queries/ExampleJob.swift"), environment: ["PATH": "/nonexistent"])
        } catch let error as JobError {
            #expect(error.description.contains("no Swift toolchain found"))
        }
    }

    @Test func builtinJobThroughTheCommandLine() throws {
        let store = try ImportedStore.sample()
        let result = try runProcess(Fixtures.telemetryExecutable, ["job", "--store", store.path, "pings-per-day", "--format", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: String]]
        let expected = try store.twin("job_pings_per_day.sql")
        #expect(rows?.map { OutputRecord(key: $0["key"] ?? "", value: $0["value"] ?? "") } == expected)
        #expect(result.stderr.contains("pings mapped"))
        let list = try runProcess(Fixtures.telemetryExecutable, ["job", "--list"])
        #expect(list.stdout.contains("histogram-by-channel --histogram NAME"))
    }
}

extension ImportedStore {
    /// Rows of an ad-hoc two-column query as records.
    func twinSQL(_ sql: String) throws -> [OutputRecord] {
        let store = try Store(path: path, create: false, readOnly: true)
        return try store.query(sql)[0].rows.map { OutputRecord(key: Self.text($0[0]), value: Self.text($0[1])) }
    }
}
