import Foundation
import Testing
import TelemetryStore
import TelemetryTestSupport

/// The real converted pings of `../shared/datasets/real/storage/` (PROVENANCE.md): 5 saved-session pings.
struct RealDataTests {
    private func importReal() throws -> (Store, ImportSummary, LayoutFixture) {
        let fixture = LayoutFixture()
        let store = try fixture.openStore()
        let summary = try Importer(store: store, options: .init(jobs: 2)).run(roots: [Fixtures.sharedPath("datasets/real/storage")])
        return (store, summary, fixture)
    }

    @Test func importsTheFivePingsWithTheirDimensions() throws {
        let (store, summary, _) = try importReal()
        #expect(summary.pings == 5)
        #expect(summary.filesImported == 2)
        #expect(!summary.hadFailures)
        #expect(try store.rows("""
            SELECT reason, appName, appUpdateChannel, appVersion, submission_date, count(*) FROM pings
            GROUP BY reason, appName, appUpdateChannel, appVersion, submission_date ORDER BY appVersion
            """) == [
            ["saved_session", "Firefox", "nightly", "22.0a1", "20131011", "1"],
            ["saved_session", "Firefox", "nightly", "28.0a1", "20131029", "4"],
        ])
        #expect(try store.rows("SELECT DISTINCT appBuildID FROM pings ORDER BY 1") == [["20130226031002"], ["20131029030201"]])
    }

    @Test func typedInfoColumnsMatchEachPing() throws {
        let (store, _, _) = try importReal()
        #expect(try store.rows("SELECT document_id, os, os_version, arch, memsize, cpucount, locale FROM pings ORDER BY document_id") == [
            ["024b73d7-2e26-4545-8077-1cc930904eae", "WINNT", "6.1", "x86", "2046", "2", "en-US"],
            ["41550578-ba6c-4228-8fe8-eb4ba6fb2fe1", "WINNT", "6.1", "x86-64", "8145", "4", "en-US"],
            ["47656810-b826-49d8-bdae-8d9e8e656fae", "WINNT", "6.3", "x86-64", "6005", "4", "en-US"],
            ["7dbe9640-0a27-4c89-b937-abc19ecc2328", "WINNT", "6.0", "x86-64", "8183", "4", "en-US"],
            ["fa35a0ff-3a75-4df7-89a3-cbca786c9727", "WINNT", "6.0", "x86-64", "8183", "4", "en-US"],
        ])
        // The typed column and the JSON path agree for every ping.
        #expect(try store.int("SELECT count(*) FROM pings WHERE os = json_extract(payload, '$.info.OS')") == 5)
        #expect(try store.rows("SELECT DISTINCT update_channel FROM pings") == [["nightly"]])
    }

    @Test func histogramArrayIsStoredValueByValue() throws {
        let (store, _, _) = try importReal()
        // GC_MS of the 22.0a1 ping: 50 buckets then sum, log_sum, log_sum_squares, sum_squares_lo/hi.
        let values = try store.rows("""
            SELECT value FROM pings, json_each(pings.payload, '$.histograms.GC_MS')
            WHERE document_id = '024b73d7-2e26-4545-8077-1cc930904eae' ORDER BY key
            """).map { $0[0] }
        let expected: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 2, 2, 1, 1, 4, 8, 60,
                               173, 235, 66, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 264051, 0, 0, -1, -1]
        #expect(values == expected.map(String.init))
        #expect(try store.int("SELECT count(*) FROM pings WHERE json_type(payload, '$.histograms.GC_MS') = 'array'") == 5)
        #expect(try store.rows("SELECT count(*) FROM pings, json_each(pings.payload, '$.histograms')")[0][0] == "\(312 + 395 + 228 + 299 + 375)")
    }

    @Test func dedupViewAndFilesTableDescribeTheImport() throws {
        let (store, _, _) = try importReal()
        #expect(try store.int("SELECT count(*) FROM pings_dedup") == 5)
        #expect(try store.int("SELECT count(*) FROM duplicate_documents") == 0)
        #expect(try store.rows("SELECT status, format, record_count FROM source_files ORDER BY path") == [
            ["ok", "lzma", "1"], ["ok", "lzma", "4"],
        ])
    }
}
