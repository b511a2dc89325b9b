import Foundation
import Testing
import TelemetryStore
import TelemetryTestSupport

/// The committed sample (`datasets/sample`) against the numbers its generator wrote to EXPECTED.json.
struct SampleDatasetTests {
    @Test func importMatchesExpectedJSON() throws {
        let expectedData = try Data(contentsOf: URL(fileURLWithPath: Fixtures.repoPath("datasets/sample/EXPECTED.json")))
        let parsed = try JSONSerialization.jsonObject(with: expectedData)
        let expected = try #require(parsed as? [String: Any])
        let fixture = LayoutFixture()
        let store = try fixture.openStore()
        let summary = try Importer(store: store, options: .init(jobs: 2)).run(roots: [Fixtures.repoPath("datasets/sample/storage")])
        func number(_ any: Any?) -> Int { (any as? NSNumber)?.intValue ?? -1 }
        func counts(_ key: String) -> [String: Int] { ((expected[key] as? [String: Any]) ?? [:]).mapValues { number($0) } }
        func grouped(_ column: String) throws -> [String: Int] {
            Dictionary(uniqueKeysWithValues: try store.rows("SELECT \(column), count(*) FROM pings GROUP BY 1").map { ($0[0], Int($0[1]) ?? -1) })
        }
        #expect(summary.pings == number(expected["good_pings"]))
        #expect(summary.badLines.filter { $0.value > 0 } == counts("bad_lines").filter { $0.value > 0 })
        #expect(summary.fileErrors.count == 1)
        #expect(try grouped("reason") == counts("by_reason"))
        #expect(try grouped("appUpdateChannel") == counts("by_appUpdateChannel"))
        #expect(try grouped("os") == counts("by_OS"))
        #expect(try grouped("submission_date") == counts("by_submission_date"))
        #expect(try grouped("appVersion") == counts("by_appVersion"))
        // Of EXPECTED.json's three shared document ids, two are an idle-daily and a saved-session (two pings:
        // dedup keys on document id and ping type) and one is a resubmission (a duplicate).
        let duplicates = try #require(expected["duplicates"] as? [String: Any])
        #expect(number(duplicates["document_ids"]) == 3)
        #expect(try store.int("SELECT count(*) FROM duplicate_documents") == 1)
        #expect(try store.int("SELECT count(*) FROM pings_dedup") == Int64(number(expected["distinct_document_ids"])) + 2)
        // Element-wise bucket sums of SAMPLE_GC_MS, straight from the payload JSON.
        let totals = try #require(expected["histogram_totals"] as? [String: Any])
        let bucketSums = ((totals["bucket_sums"] as? [Any]) ?? []).map { number($0) }
        let summed = try store.rows("""
            SELECT CAST(h.key AS INTEGER) AS bucket, sum(h.value) FROM pings, json_each(pings.payload, '$.histograms.SAMPLE_GC_MS') h
            WHERE CAST(h.key AS INTEGER) < 50 GROUP BY bucket ORDER BY bucket
            """).map { Int($0[1]) ?? -1 }
        #expect(summed == bucketSums)
        #expect(try store.int("SELECT count(*) FROM pings WHERE json_type(payload, '$.histograms.SAMPLE_GC_MS') = 'array'") == Int64(number(totals["pings"])))
    }
}
