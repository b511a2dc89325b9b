import Foundation
import Testing
import TelemetryTestSupport

/// The five real pings of `../shared/datasets/real/storage` (two LZMA-alone files), end to end.
struct RealDataEndToEndTests {
    @Test("import ../shared/datasets/real/storage: exit 0, 5 pings, the dimensions and os of each")
    func importRealStorage() throws {
        let directory = TemporaryDirectory("e2e-real")
        let store = directory.file("real.db")
        let result = try CLI.run(["import", Fixtures.sharedPath("datasets/real/storage"), "--store", store])
        #expect(result.status == 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        #expect(result.stdout.hasPrefix("Imported 5 pings from 2 file(s) into \(store) in "), "stdout: \(result.stdout)")
        #expect(result.stdout.contains("Bad lines: 0."))
        #expect(!result.stdout.contains("File errors"))

        let groups = try CLI.csvRows("""
            SELECT reason, appName, appUpdateChannel, appVersion, submission_date, count(*) FROM pings
            GROUP BY reason, appName, appUpdateChannel, appVersion, submission_date ORDER BY appVersion
            """, store: store)
        #expect(groups == [["saved_session", "Firefox", "nightly", "22.0a1", "20131011", "1"],
                           ["saved_session", "Firefox", "nightly", "28.0a1", "20131029", "4"]])
        #expect(try CLI.counts("SELECT os, count(*) FROM pings GROUP BY os", store: store) == ["WINNT": 5])
        // The typed column agrees with the payload it was taken from.
        #expect(try CLI.scalar("SELECT count(*) FROM pings WHERE os = json_extract(payload, '$.info.OS')", store: store) == 5)
        #expect(try CLI.csvRows("SELECT format, status, record_count FROM source_files ORDER BY path", store: store)
                == [["lzma", "ok", "1"], ["lzma", "ok", "4"]])
        #expect(try CLI.scalar("SELECT count(*) FROM import_errors", store: store) == 0)
    }
}
