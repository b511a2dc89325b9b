import Foundation
import Testing
import TelemetryTestSupport

/// The main job: `telemetry import datasets/sample/storage`, checked against `datasets/sample/EXPECTED.json`,
/// then every saved query in `queries/` against its golden file.
struct SampleImportTests {
    /// The stray file (5 dimensions instead of 6), relative to the storage root.
    static func strayFile() throws -> String {
        let files = try #require(try Sample.expected()["path_error_files"] as? [[String: Any]])
        #expect(files.count == 1)
        return try #require(files.first?["file"] as? String)
    }

    /// Bad lines as the text summary prints them: reasons sorted, zero counts left out.
    static func badLineText(_ counts: [String: Int]) -> String {
        let nonZero = counts.filter { $0.value > 0 }
        let parts = nonZero.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        return "Bad lines: \(nonZero.values.reduce(0, +)) (\(parts.joined(separator: ", ")))."
    }

    @Test("import of the sample: exit 1, 363 pings, bad lines by reason, one path error naming the stray file")
    func importSummary() throws {
        let directory = TemporaryDirectory("e2e-sample")
        let (store, result) = try Sample.importInto(directory)
        let stray = try Self.strayFile()
        let badLines = try Sample.counts("bad_lines")

        #expect(result.status == 1, "bad lines and a path error must make the import exit 1; stderr: \(result.stderr)")
        let lines = result.stdout.components(separatedBy: "\n")
        #expect(lines.first?.hasPrefix("Imported \(try Sample.number("good_pings")) pings from "
                                       + "\(try Sample.number("files_imported")) file(s) into \(store) in ") == true,
                "first line: \(lines.first ?? "")")
        #expect(try Sample.number("good_pings") == 363)
        #expect(lines.contains(Self.badLineText(badLines)), "stdout:\n\(result.stdout)")
        #expect(lines.contains("File errors: \(try Sample.number("files_with_path_error"))"), "stdout:\n\(result.stdout)")
        let errorLines = lines.filter { $0.hasPrefix("  [") }
        #expect(errorLines.count == 1)
        #expect(errorLines.first?.hasPrefix("  [path_error] \(Sample.storage)/\(stray): not a storage-layout path") == true,
                "file error line: \(errorLines.first ?? "none")")
        #expect(!result.stdout.contains("Interrupted"))
    }

    @Test("import --json of the sample: counts, bad lines and the file error match EXPECTED.json")
    func importSummaryJSON() throws {
        let directory = TemporaryDirectory("e2e-sample-json")
        let (store, result) = try Sample.importInto(directory, extra: ["--json"])
        #expect(result.status == 1)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
                                   "stdout is not a JSON object: \(result.stdout)")
        #expect(summary["store"] as? String == store)
        #expect(summary["files_found"] as? Int == (try Sample.number("files")))
        #expect(summary["files_imported"] as? Int == (try Sample.number("files_imported")))
        #expect(summary["files_unchanged"] as? Int == 0)
        #expect(summary["pings"] as? Int == (try Sample.number("good_pings")))
        #expect(summary["bad_line_count"] as? Int == (try Sample.number("bad_lines_total")))
        #expect(summary["bad_lines"] as? [String: Int] == (try Sample.counts("bad_lines")).filter { $0.value > 0 })
        #expect(summary["interrupted"] as? Bool == false)
        let fileErrors = try #require(summary["file_errors"] as? [[String: String]])
        #expect(fileErrors.count == 1)
        #expect(fileErrors.first?["path"] == Sample.storage + "/" + (try Self.strayFile()))
        #expect(fileErrors.first?["reason"] == "path_error")
        #expect(fileErrors.first?["message"]?.contains("5 dimensions in the path, the schema has 6") == true)
    }

    @Test("the sample's store matches EXPECTED.json: every by_* count, duplicates and bad lines by file and line")
    func storeMatchesExpected() throws {
        let directory = TemporaryDirectory("e2e-sample-store")
        let (store, result) = try Sample.importInto(directory)
        #expect(result.status == 1)

        #expect(try CLI.scalar("SELECT count(*) FROM pings", store: store) == (try Sample.number("good_pings")))
        #expect(try CLI.scalar("SELECT count(DISTINCT document_id) FROM pings", store: store)
                == (try Sample.number("distinct_document_ids")))
        // Dedup keys on (document id, ping type): the two ids shared by an idle-daily and a saved-session are
        // two pings each; only the resubmitted saved-session is a duplicate (docs/store.md "Duplicates").
        #expect(try CLI.scalar("SELECT count(*) FROM pings_dedup", store: store) == 362)
        let dimensions = [("reason", "by_reason"), ("appName", "by_appName"), ("appUpdateChannel", "by_appUpdateChannel"),
                          ("appVersion", "by_appVersion"), ("os", "by_OS"), ("submission_date", "by_submission_date")]
        for (column, key) in dimensions {
            let actual = try CLI.counts("SELECT \(column), count(*) FROM pings GROUP BY 1", store: store)
            #expect(actual == (try Sample.counts(key)), "\(column)")
        }
        // The numbers the brief names, spelled out so that a wrong EXPECTED.json cannot hide a wrong store.
        #expect(try CLI.counts("SELECT os, count(*) FROM pings GROUP BY 1", store: store)
                == ["WINNT": 259, "Darwin": 59, "Linux": 45])
        #expect(try CLI.counts("SELECT submission_date, count(*) FROM pings GROUP BY 1", store: store)
                == ["20131015": 168, "20131016": 195])

        // Document ids seen more than once: three in EXPECTED.json, two copies each; a duplicate is an id whose
        // copies all have one ping type (the first directory of their paths): the one resubmission.
        let duplicates = try #require(try Sample.expected()["duplicates"] as? [String: Any])
        let list = try #require(duplicates["list"] as? [[String: Any]])
        #expect(list.count == 3)
        let expectedDuplicates = Dictionary(uniqueKeysWithValues: list.compactMap { entry -> (String, Int)? in
            guard let id = entry["document_id"] as? String, let rows = entry["rows"] as? [[String: Any]] else { return nil }
            let types = Set(rows.map { (($0["file"] as? String) ?? "").split(separator: "/").first.map(String.init) ?? "" })
            return types.count == 1 ? (id, rows.count) : nil
        })
        #expect(expectedDuplicates.count == 1)
        #expect(try CLI.counts("SELECT document_id, copies FROM duplicate_documents", store: store) == expectedDuplicates)
        #expect(try CLI.scalar("SELECT count(DISTINCT document_id) FROM duplicate_documents WHERE ping_type = 'saved_session'", store: store) == 1)

        // Every bad line is recorded with its file (relative to the root), line and reason.
        let badLineList = try #require(try Sample.expected()["bad_line_list"] as? [[String: Any]])
        let expectedBad = Set(badLineList.map { "\($0["file"] ?? "")|\($0["line"] ?? "")|\($0["reason"] ?? "")" })
        let prefix = Sample.storage + "/"
        let actualBad = try CLI.csvRows("""
            SELECT substr(path, \(prefix.count + 1)) || '|' || line || '|' || reason FROM import_errors
            WHERE severity = 'error' AND reason <> 'path_error'
            """, store: store).map { $0.joined(separator: ",") }
        #expect(actualBad.count == 6)
        #expect(Set(actualBad) == expectedBad)

        // The stray file is in source_files as a path error with nothing imported; the others are ok.
        #expect(try CLI.counts("SELECT status, count(*) FROM source_files GROUP BY 1", store: store)
                == ["ok": try Sample.number("files_imported"), "path_error": 1])
        #expect(try CLI.csvRows("SELECT substr(path, \(prefix.count + 1)), record_count FROM source_files WHERE status = 'path_error'",
                                store: store) == [[try SampleImportTests.strayFile(), "0"]])
    }

    @Test("queries/*.sql on the sample's store match their golden files", arguments: Sample.queryNames)
    func savedQuery(_ name: String) throws {
        let directory = TemporaryDirectory("e2e-golden")
        let (store, imported) = try Sample.importInto(directory)
        #expect(imported.status == 1)
        let path = Fixtures.repoPath("queries/\(name).sql")
        // A parameter the SQL names must be given (NULL picks the query's default).
        let parameters = try String(contentsOfFile: path, encoding: .utf8).contains(":histogram") ? ["--param", "histogram=NULL"] : []
        let result = try CLI.run(["query", "--file", path, "--store", store] + parameters)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stderr.isEmpty)
        try Golden.check(result.stdout, named: name)
    }

    @Test("every golden file belongs to a saved query, and there are saved queries")
    func goldenFilesMatchQueries() throws {
        #expect(Sample.queryNames.count >= 6, "queries/: \(Sample.queryNames)")
        let goldens = try FileManager.default.contentsOfDirectory(atPath: Golden.directory)
            .filter { $0.hasSuffix(".txt") }.map { String($0.dropLast(4)) }.sorted()
        #expect(goldens == Sample.queryNames)
    }
}
